import {execa, type ResultPromise} from 'execa'
import {createHash} from 'node:crypto'
import {mkdtemp, rm, writeFile} from 'node:fs/promises'
import net from 'node:net'
import os from 'node:os'
import path from 'node:path'

/** A CNCF distribution registry (Debian's docker-registry) on 127.0.0.1, on a free port. */
export interface TestRegistry {
  host: string
  /** Where the registry keeps its blobs and repositories (filesystem storage). */
  dataDir: string
  /** The request lines it served (`GET /v2/… 200`), with RegistryOptions.accessLog. */
  requests(): string[]
  stop(): Promise<void>
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer()
    server.once('error', reject)
    server.listen(0, '127.0.0.1', () => {
      const {port} = server.address() as net.AddressInfo
      server.close(() => resolve(port))
    })
  })
}

async function waitForPort(port: number, child: ResultPromise, timeoutMs = 15_000): Promise<void> {
  const deadline = Date.now() + timeoutMs
  while (Date.now() < deadline) {
    if (child.exitCode !== null) throw new Error(`registry exited with ${child.exitCode}`)
    const open = await new Promise<boolean>((resolve) => {
      const socket = net.connect(port, '127.0.0.1')
      socket.once('connect', () => {
        socket.destroy()
        resolve(true)
      })
      socket.once('error', () => resolve(false))
    })
    if (open) return
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`registry did not listen on 127.0.0.1:${port}`)
}

/** A bcrypt line for the registry's htpasswd file (python3's crypt module, glibc's bcrypt). */
async function htpasswdLine(user: string, password: string): Promise<string> {
  const {stdout} = await execa('python3', [
    '-W',
    'ignore',
    '-c',
    'import crypt,sys; print(sys.argv[1] + ":" + crypt.crypt(sys.argv[2], crypt.mksalt(crypt.METHOD_BLOWFISH)))',
    user,
    password,
  ])
  return String(stdout).trim()
}

export interface RegistryOptions {
  /** Require these credentials (basic auth over plain HTTP). */
  auth?: {user: string; password: string}
  /** Keep an access log: requests() lists `METHOD PATH STATUS` for every request served. */
  accessLog?: boolean
}

/** `METHOD PATH STATUS` from a combined-log-format line (`… "GET /v2/ HTTP/1.1" 200 …`). */
function requestLine(line: string): string | undefined {
  const match = /"([A-Z]+) (\S+) HTTP\/[\d.]+" (\d{3})/.exec(line)
  return match ? `${match[1]} ${match[2]} ${match[3]}` : undefined
}

export async function startRegistry(options: RegistryOptions = {}): Promise<TestRegistry> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'kod-registry-'))
  const port = await freePort()
  const config = path.join(dir, 'config.yml')
  const auth = options.auth
  if (auth) await writeFile(path.join(dir, 'htpasswd'), `${await htpasswdLine(auth.user, auth.password)}\n`)
  await writeFile(
    config,
    [
      'version: 0.1',
      `log: {level: error, accesslog: {disabled: ${options.accessLog ? 'false' : 'true'}}}`,
      `storage: {filesystem: {rootdirectory: ${path.join(dir, 'data')}}, delete: {enabled: true}}`,
      `http: {addr: "127.0.0.1:${port}"}`,
      ...(auth ? [`auth: {htpasswd: {realm: kod-test, path: ${path.join(dir, 'htpasswd')}}}`] : []),
      '',
    ].join('\n'),
  )
  const binary = process.env.KOD_TEST_REGISTRY ?? 'docker-registry'
  const child = execa(binary, ['serve', config], {stdin: 'ignore', stdout: options.accessLog ? 'pipe' : 'ignore', stderr: 'pipe', reject: false})
  const served: string[] = []
  let pending = ''
  child.stdout?.on('data', (chunk: Buffer) => {
    const lines = (pending + chunk.toString('utf8')).split('\n')
    pending = lines.pop() ?? ''
    for (const line of lines) {
      const request = requestLine(line)
      if (request) served.push(request)
    }
  })
  await waitForPort(port, child)
  let stopped = false
  return {
    host: `127.0.0.1:${port}`,
    dataDir: path.join(dir, 'data'),
    requests: () => [...served],
    async stop() {
      if (stopped) return
      stopped = true
      child.kill('SIGTERM')
      await child
      await rm(dir, {recursive: true, force: true})
    },
  }
}

/** A manifest's digest as the registry serves it (no tool's word for it: its bytes hashed here), over plain HTTP. */
export async function remoteDigest(reference: string): Promise<string> {
  const raw = await execa('skopeo', ['inspect', '--raw', '--tls-verify=false', `docker://${reference}`], {stdin: 'ignore', encoding: 'buffer'})
  return `sha256:${createHash('sha256').update(Buffer.from(raw.stdout)).digest('hex')}`
}
