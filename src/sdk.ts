/**
 * kod/sdk: what plugin commands build on (docs/plugins.md). A plugin imports it at run time —
 * `import {KodCommand, Flags} from 'kod/sdk'` — and gets the running kod's own copy (bin/sdk-hooks.js
 * resolves `kod` and `kod/sdk` to it from any plugin, wherever the plugin is installed), so a tool a plugin
 * declares, an error it throws and the base command it extends are kod's very own. Types of the source
 * contract stay in `kod` (`import type`, src/api.ts).
 *
 * Versioned: SDK_API changes when something here changes incompatibly; a plugin may check it.
 */
export const SDK_API = 'kod.sdk/v1'
export type SdkApi = typeof SDK_API

// oclif's flag and argument builders, kod's copy (a plugin needs no @oclif/core of its own).
export {Args, Flags} from '@oclif/core'

// The contract's types (src/api.ts), for TypeScript plugins that import everything from here.
export type * from './api.js'
export {HINTS_API, SOURCE_API} from './api.js'

// The base command: one-line errors with fixed exit codes, Ctrl-C/SIGTERM, cleanup, scratch directory,
// progress or quiet, context() (tool runner, logger, …); the flags kod's commands share.
export {
  debugPrinter,
  KodCommand,
  packageFlag,
  targetFlags,
  targetFrom,
  verifyKeyFlag,
  verifyKeyFrom,
} from './lib/base-command.js'
export {parseTarget} from './lib/target.js'

// Errors and exit codes.
export {ExitCode, type ExitCodeValue, fileSystemError, KodError, messageOf, packageError, usageError} from './lib/errors.js'

// Tools: the runner, the registry plugins declare their tools in, and the missing-tool errors.
export {
  createToolRunner,
  errorDetail,
  formatCommand,
  isRegisteredTool,
  missingTool,
  redactSecrets,
  registeredTools,
  registerTool,
  resolveExecutable,
  type RunnerOptions,
  toolAvailable,
  toolBinary,
  toolDefinition,
  ToolTimeout,
} from './lib/tools.js'
export {shellCommand, shellQuote} from './lib/shell.js'

// What an executable is, without running it: platform, static or dynamic, the libraries it needs.
export {type ExecutableInfo, hostPlatform, readExecutableInfo} from './lib/elf.js'

// Bounded waits.
export {ANSWER_MS, defaultTimeoutMs, formatDuration, isTimeout, makeDirectories, transferTimeoutMs, UNKNOWN_SIZE_MS} from './lib/bounds.js'

// Progress on stderr: steps that say what they did, quiet under --json.
export {countedSubtasks, type CountedItem, type CountedWords, keepSaying, progressMode, type ProgressMode, runSteps, type Step, step} from './lib/progress.js'
export {formatSize} from './lib/format.js'

// Host steps: planned changes to the host, printed by --list-commands or run in order with rollback.
export {type HostStep, hostCommand, hostStepCommands, hostSteps, listCommandsFlag, type Ownership, runHostSteps} from './lib/host-steps.js'

// Bundles: checksummed, optionally signed archives in the format of packages.
export {
  BUNDLE_API_VERSION,
  BUNDLE_FORMAT,
  BUNDLE_MANIFEST_FILE,
  type BundleKind,
  type BundleManifest,
  bundleManifestSchema,
  type BundleSchema,
  type OpenedBundle,
  openBundle,
  parseBundleManifest,
  readBundleHead,
  writeBundle,
} from './lib/bundle.js'

// Packages, and what packages and bundles share: checksums, signatures, atomic writes.
export {
  type ArchiveHead,
  type ArchiveSummary,
  discard,
  extractPackage,
  listFiles,
  mapLimit,
  parseManifest,
  parseSums,
  readArchiveHead,
  sha256File,
  SIGNATURE_FILE,
  SUMS_FILE,
  verifyArchive,
  verifyDirectory,
  writePackage,
} from './lib/kodpkg.js'
export {checkSignature, loadSigningKey, loadVerifyKey, signSums} from './lib/signing.js'
