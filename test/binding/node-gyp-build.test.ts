// The native contract against the node-gyp build (the one `npm ci` makes).
import { nodeGypBuild } from '../helpers/paths.js';
import { nativeContract } from '../helpers/native-contract.js';

nativeContract(nodeGypBuild);
