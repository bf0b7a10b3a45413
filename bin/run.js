#!/usr/bin/env node
import {needsSdkHooks, quickVersion} from './quick.js'

// `kod --version` is answered before oclif, its plugins and the SDK loader are loaded, and the SDK loader is
// registered only when a plugin may need it (docs/performance.md). oclif itself is loaded before the loader,
// as it always was: only plugins go through it.
const argv = process.argv.slice(2)
if (!quickVersion(argv)) {
  const {execute} = await import('@oclif/core')
  const {localPluginArgs} = await import('./local-plugins.js')
  if (needsSdkHooks(argv)) await import('./register-sdk.js')
  const {args, missing} = localPluginArgs(argv)
  if (missing === undefined) {
    await execute({args, dir: import.meta.url})
  } else {
    process.stderr.write(`Error: plugin not found: ${missing}\n`)
    process.exitCode = 2
  }
}
