/** File helpers for tests of watched files (endpoints file, resources file, TLS certificates). */
import { renameSync, writeFileSync } from 'node:fs';

/**
 * Replaces a file the way editors and config management do (write a temp file, rename it over the original),
 * so a watcher never reads it half-written.
 */
export function replaceAtomically(path: string, content: string): void {
  writeFileSync(`${path}.tmp`, content);
  renameSync(`${path}.tmp`, path);
}
