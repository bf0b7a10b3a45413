import path from 'node:path'

import {CREDENTIALS_IN_URL, hasUserinfo, refuse} from './errors.js'
import {exists} from './files.js'
import {type ChartRef, type Repository} from './model.js'

/**
 * A release's `chart:` as helmfile reads it (pkg/state/util.go isLocalChart, normalizeChart;
 * state.go GetRepositoryAndNameFromChartName, IsOCIChart):
 * - `./x`, `../x`, an absolute path, a name without `/`, or 4+ segments: a local path, relative to
 *   the helmfile's directory;
 * - `oci://…`: an OCI chart;
 * - `repo/name` (2 or 3 segments): the repository of that name; for an OCI repository helm pulls
 *   `oci://<url>/<name>`. With no such repository helm would try the path, so an existing local
 *   directory is accepted as a local chart, and anything else is an unknown repository.
 * A local chart must be a Helm chart: kustomize directories and raw manifests are chartified by
 * helmfile at deploy time, which a package cannot carry faithfully.
 */
export async function resolveChart(file: string, dir: string, chart: string, release: string, repositories: Repository[]): Promise<ChartRef> {
  const where = `release "${release}"`
  if (chart.startsWith('oci://')) {
    if (hasUserinfo(chart)) refuse(file, `${where}: its oci:// chart: ${CREDENTIALS_IN_URL}`)
    return {kind: 'oci', url: chart}
  }
  if (/^[a-z0-9]+::/i.test(chart) || chart.includes('?ref=')) refuse(file, `${where}: chart "${chart}" is fetched with go-getter (git:: or similar); download the chart and reference the local copy`)
  if (chart.includes('://')) refuse(file, `${where}: chart "${chart}": only local paths, repo/name and oci:// charts are supported`)
  const segments = chart.split('/')
  const local = chart.startsWith('./') || chart.startsWith('../') || path.isAbsolute(chart) || segments.length === 1 || segments.length > 3
  if (!local) {
    const repo = repositories.find((r) => r.name === segments[0])
    if (repo) {
      const name = segments.slice(1).join('/')
      const url = repo.oci ? `oci://${repo.url.replace(/^oci:\/\//, '').replace(/\/+$/, '')}/${name}` : repo.url
      return {kind: 'repo', repository: repo.name, name, url, oci: repo.oci}
    }
    if (!(await exists(path.join(dir, chart)))) {
      refuse(file, `${where}: chart "${chart}" names repository "${segments[0]}", which this helmfile does not declare under repositories:`)
    }
  }
  return localChart(file, path.resolve(dir, chart), where)
}

async function localChart(file: string, chartPath: string, where: string): Promise<ChartRef> {
  const kind = await exists(chartPath)
  if (kind === undefined) refuse(file, `${where}: local chart ${chartPath} does not exist`)
  if (kind === 'file') {
    if (!/\.tgz$|\.tar\.gz$/.test(chartPath)) refuse(file, `${where}: local chart ${chartPath} is a file but not a packaged chart (.tgz)`)
    return {kind: 'local', path: chartPath}
  }
  if ((await exists(path.join(chartPath, 'Chart.yaml'))) !== 'file') {
    refuse(file, `${where}: ${chartPath} has no Chart.yaml — kustomize and raw manifests are turned into a chart by helmfile at deploy time, which kod cannot package faithfully; make it a Helm chart`)
  }
  return {kind: 'local', path: chartPath}
}
