import {usageError} from './errors.js'

/**
 * Names helm and Kubernetes check only once the work is done (a release name after the package is
 * unpacked, a namespace at install time in the cluster): kod checks them first, as bad input (exit 2).
 */

/** A DNS-1123 label: lower-case letters, digits and "-", starting and ending with a letter or digit. */
const LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/
/** helm's release name rule: DNS-1123 labels joined by ".", at most 53 characters. */
const RELEASE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/
/** What helm's --kube-version takes: major.minor[.patch], an optional leading v and pre-release. */
const KUBE_VERSION = /^v?\d+\.\d+(\.\d+)?(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$/

export function checkReleaseName(name: string | undefined): void {
  if (name === undefined) return
  if (!RELEASE.test(name) || name.length > 53) {
    throw usageError(`-d ${JSON.stringify(name)} is not a valid release name: use at most 53 lower-case letters, digits, "-" and ".", starting and ending with a letter or digit`)
  }
}

export function checkNamespace(name: string | undefined): void {
  if (name === undefined) return
  if (!LABEL.test(name) || name.length > 63) {
    throw usageError(`-n ${JSON.stringify(name)} is not a valid namespace: use at most 63 lower-case letters, digits and "-", starting and ending with a letter or digit`)
  }
}

export function checkKubeVersion(version: string | undefined): void {
  if (version === undefined) return
  if (!KUBE_VERSION.test(version)) throw usageError(`--kube-version ${JSON.stringify(version)} is not a Kubernetes version: use e.g. 1.30.0`)
}
