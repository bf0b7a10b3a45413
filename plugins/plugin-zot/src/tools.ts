import {registerTool} from 'kod/sdk'

/**
 * The tools plugin-zot runs, declared to kod's tool registry: zot and zli as the bundle holds them (run by
 * path, with the runner's `binaries`), and getent, to see whether zot's user and group exist. No
 * versionArgs: they are not tools kod package-tools should bundle.
 */
export function registerZotTools(): void {
  registerTool({name: 'zot', installHint: 'give package-zot the zot release binary with --zot-binary (https://github.com/project-zot/zot/releases)', timeoutMs: 60_000})
  registerTool({name: 'zli', installHint: 'give package-zot the zli release binary with --zli-binary (https://github.com/project-zot/zot/releases)', timeoutMs: 60_000})
  registerTool({name: 'getent', installHint: 'install getent (libc-bin on Debian and Ubuntu, glibc-common on RHEL)', timeoutMs: 30_000})
}
