import path from 'node:path'

import {needsHelmfile, refuse} from './errors.js'
import {exists} from './files.js'

/** Why a helmfile.d/ is refused, after naming it. */
const SEVERAL_HELMFILES = 'several helmfiles; a kod package holds one helmfile — write one helmfile.yaml that lists them under helmfiles:'

/**
 * What `-c` may name. A file is read as it is. A directory is read the way helmfile reads its
 * working directory when run without `-f` (pkg/app/app.go findDesiredStateFiles): its
 * `helmfile.yaml`, or `helmfile.yaml.gotmpl` (a template). `helmfile.yml` is not a name helmfile
 * looks for, so kod does not either. `helmfile.d/` holds several helmfiles run independently, and
 * a kod package holds exactly one helmfile: list them under `helmfiles:` in one helmfile instead.
 */
export async function locateHelmfile(fileOrDir: string): Promise<string> {
  const abs = path.resolve(fileOrDir)
  const kind = await exists(abs)
  if (kind === undefined) refuse(abs, 'no such helmfile or directory')
  if (kind === 'file') return abs
  if (path.basename(abs) === 'helmfile.d') refuse(abs, `is helmfile.d/, ${SEVERAL_HELMFILES}`)
  const yaml = path.join(abs, 'helmfile.yaml')
  const gotmpl = `${yaml}.gotmpl`
  const [hasYaml, hasGotmpl, hasD] = await Promise.all([exists(yaml), exists(gotmpl), exists(path.join(abs, 'helmfile.d'))])
  if (hasYaml === 'file' && hasGotmpl === 'file') refuse(abs, 'both helmfile.yaml and helmfile.yaml.gotmpl exist (helmfile refuses this too); remove one')
  if ((hasYaml === 'file' || hasGotmpl === 'file') && hasD === 'dir') refuse(abs, 'holds both a helmfile and helmfile.d/ (helmfile refuses this too); remove one')
  if (hasYaml === 'file') return yaml
  if (hasGotmpl === 'file') needsHelmfile(gotmpl, 'it is a Go template (.gotmpl)')
  if (hasD === 'dir') refuse(abs, `holds helmfile.d/, ${SEVERAL_HELMFILES}`)
  refuse(abs, 'holds no helmfile.yaml (helmfile.yml is not a name helmfile looks for)')
}
