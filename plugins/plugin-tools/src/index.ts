// @kod/plugin-tools: kod package-tools and kod deploy-tools (docs/tools.md). Its commands are found by oclif
// (package.json "oclif.commands"); this module exports the pieces its tests and other plugins may reuse.
export {bundleFileName, launcherScript, type ToolsBundleManifest, toolsBundle} from './bundle-kind.js'
export {DEFAULT_TOOLS, parseVersion, toolRequests} from './find.js'
export {collectKod, visibleFrom} from './kod-tree.js'
export {planInstall} from './install-plan.js'
export {treeDigest} from './tree-digest.js'
