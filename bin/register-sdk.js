// Makes kod/sdk importable by every plugin, from the running kod (sdk-hooks.js). Imported first by dev.js, and by
// run.js (after oclif itself) when a plugin may need it (quick.js needsSdkHooks), before oclif loads any plugin.
import {register} from 'node:module'

register('./sdk-hooks.js', import.meta.url, {data: {host: new URL('./run.js', import.meta.url).href}})
