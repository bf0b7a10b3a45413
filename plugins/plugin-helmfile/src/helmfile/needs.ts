import {refuse} from './errors.js'

/**
 * Release identities and `needs`, as helmfile computes them, so the install order kod prints is
 * the order helmfile would use.
 */

/** pkg/state/state.go ReleaseToID: `[kubeContext/][namespace/]name`, `ctx//name` when only a context is set. */
export function releaseId(name: string, namespace = '', kubeContext = ''): string {
  let id = kubeContext ? `${kubeContext}/` : ''
  if (namespace) id += `${namespace}/`
  if (kubeContext && !namespace) id += '/'
  return id + name
}

/**
 * pkg/state/state.go reformat: a need is `name`, `namespace/name` or `kubecontext/namespace/name`;
 * missing parts are the needing release's own namespace and kube context.
 */
export function resolveNeed(need: string, namespace = '', kubeContext = ''): string {
  const parts = need.split('/')
  const name = parts[parts.length - 1]
  const ns = parts.length > 1 ? parts[parts.length - 2] : namespace
  const kc = parts.length > 2 ? parts.slice(0, -2).join('/') : kubeContext
  return releaseId(name, ns, kc)
}

export interface Node {
  id: string
  needs: string[]
}

/**
 * pkg/state/state_run.go GroupReleasesByDependency: releases in dependency levels (a release comes
 * after everything it needs), each level in file order. An undefined need or a cycle is an error.
 */
export function installOrder(file: string, nodes: Node[]): string[] {
  const index = new Map<string, number>()
  nodes.forEach((n, i) => {
    if (!index.has(n.id)) index.set(n.id, i)
  })
  const needsOf = new Map<string, Set<string>>()
  for (const n of nodes) {
    const set = needsOf.get(n.id) ?? new Set<string>()
    for (const need of n.needs) {
      if (!index.has(need)) {
        refuse(file, `release "${n.id}" needs an undefined release "${need}" (needs resolve within one helmfile and its bases, by [kubecontext/][namespace/]name)`)
      }
      set.add(need)
    }
    needsOf.set(n.id, set)
  }
  const done = new Set<string>()
  const order: string[] = []
  while (done.size < needsOf.size) {
    const level = [...needsOf.keys()].filter((id) => !done.has(id) && [...needsOf.get(id)!].every((d) => done.has(d)))
    if (level.length === 0) refuse(file, `needs form a cycle: ${cycle(needsOf, done).join(' → ')}`)
    level.sort((a, b) => index.get(a)! - index.get(b)!)
    for (const id of level) done.add(id)
    order.push(...level)
  }
  return order
}

function cycle(needsOf: Map<string, Set<string>>, done: Set<string>): string[] {
  const start = [...needsOf.keys()].find((id) => !done.has(id))!
  const path: string[] = []
  let at = start
  while (!path.includes(at)) {
    path.push(at)
    at = [...needsOf.get(at)!].find((d) => !done.has(d))!
  }
  return [...path.slice(path.indexOf(at)), at]
}
