/**
 * Another local user, for the trust tests: files and folders handed to `nobody` with chown stand
 * for what a second user on a shared GPU host plants. Only root can hand files over, so those
 * tests run where the suite runs as root (CI does) and are skipped elsewhere.
 */
import { chownSync, lchownSync } from 'node:fs';

export const OTHER_UID = 65534;
export const OTHER_GID = 65534;
/** A second unprivileged user, for a victim that is not root either. */
export const VICTIM_UID = 1;

export const runningAsRoot = process.getuid?.() === 0;

/** Makes `file` (a link itself, not its target, when `link`) belong to the other user. */
export function giveToOtherUser(file: string, link = false): void {
  (link ? lchownSync : chownSync)(file, OTHER_UID, OTHER_GID);
}
