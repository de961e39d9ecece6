// The same native contract against the cmake-js build of the same sources (npm run build:cmake).
import { cmakeBuild } from '../helpers/paths.js';
import { nativeContract } from '../helpers/native-contract.js';

nativeContract(cmakeBuild);
