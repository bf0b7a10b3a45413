import {execa} from 'execa'
import {readFile} from 'node:fs/promises'
import https from 'node:https'
import net from 'node:net'
import path from 'node:path'

/** An HTTPS server on 127.0.0.1 with a self-signed certificate, serving the files of one directory. */
export interface ChartServer {
  url: string
  host: string
  stop(): Promise<void>
}

export interface ChartServerOptions {
  /** Require HTTP basic auth with these credentials (401 with a WWW-Authenticate challenge otherwise). */
  auth?: {user: string; password: string}
}

export async function startChartServer(dir: string, options: ChartServerOptions = {}): Promise<ChartServer> {
  const expected = options.auth ? `Basic ${Buffer.from(`${options.auth.user}:${options.auth.password}`).toString('base64')}` : undefined
  const key = path.join(dir, '.key.pem')
  const cert = path.join(dir, '.cert.pem')
  await execa('openssl', ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', key, '-out', cert, '-days', '1', '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1'])
  const server = https.createServer({key: await readFile(key), cert: await readFile(cert)}, async (request, response) => {
    if (expected && request.headers.authorization !== expected) {
      response.writeHead(401, {'www-authenticate': 'Basic realm="kod-test"'}).end()
      return
    }
    const name = decodeURIComponent(new URL(request.url ?? '/', 'https://x').pathname).replace(/^\/+/, '')
    if (!name || name.includes('..') || name.startsWith('.')) {
      response.writeHead(404).end()
      return
    }
    try {
      const body = await readFile(path.join(dir, name))
      response.writeHead(200, {'content-length': body.length}).end(body)
    } catch {
      response.writeHead(404).end()
    }
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as net.AddressInfo
  return {
    url: `https://127.0.0.1:${port}`,
    host: `127.0.0.1:${port}`,
    stop: () => new Promise((resolve) => server.close(() => resolve())),
  }
}

/** A TCP server on 127.0.0.1 that accepts connections and never answers: a registry that hangs. */
export async function startSilentServer(): Promise<{host: string; stop(): Promise<void>}> {
  const sockets = new Set<net.Socket>()
  const server = net.createServer((socket) => {
    sockets.add(socket)
    socket.on('close', () => sockets.delete(socket))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  const {port} = server.address() as net.AddressInfo
  return {
    host: `127.0.0.1:${port}`,
    stop: () =>
      new Promise((resolve) => {
        for (const socket of sockets) socket.destroy()
        server.close(() => resolve())
      }),
  }
}
