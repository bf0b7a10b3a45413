import net from 'node:net'

import {freePort} from './registry.js'

/**
 * A TCP proxy on 127.0.0.1 in front of a real registry, to make it misbehave as networks do: stall
 * mid-transfer (a run can then be killed at a known point), or go away for a while as a restarting
 * registry does (connections cut, the port refusing, then back). The registry behind it stays real.
 */
export interface FaultProxy {
  /** host:port to give kod instead of the registry's. */
  host: string
  /** Bytes forwarded so far, each way. */
  bytes(): {up: number; down: number}
  /**
   * Stop each connection alone once it has carried `after` bytes `direction` from now; the others flow on, so
   * transfers shorter than `after` complete whatever share of the bandwidth they get and longer ones never do.
   * Resolves when the first connection stops; resume() lets them all flow again.
   */
  stallEachAfter(direction: 'up' | 'down', after: number): Promise<void>
  resume(): void
  /** Once `direction` has carried `after` more bytes: cut every connection and refuse new ones for `ms`. */
  outageAfter(direction: 'up' | 'down', after: number, ms: number): Promise<void>
  stop(): Promise<void>
}

type Trigger = {direction: 'up' | 'down'; at: number; fire: () => void}
type EachTrigger = {direction: 'up' | 'down'; after: number; fire: () => void}

export async function startFaultProxy(target: string): Promise<FaultProxy> {
  const [targetHost, targetPort] = target.split(':')
  const port = await freePort()
  const sockets = new Set<net.Socket>()
  const counted = {up: 0, down: 0}
  const paused: net.Socket[] = []
  let trigger: Trigger | undefined
  let each: EachTrigger | undefined
  let server: net.Server

  const count = (direction: 'up' | 'down', length: number): void => {
    counted[direction] += length
    if (trigger && trigger.direction === direction && counted[direction] >= trigger.at) {
      const {fire} = trigger
      trigger = undefined
      fire()
    }
  }

  const pipe = (from: net.Socket, to: net.Socket, direction: 'up' | 'down'): void => {
    // What this connection carried this way since the per-connection stall was set (or since it opened).
    let carried = 0
    let carriedFor: EachTrigger | undefined
    from.on('data', (chunk: Buffer) => {
      if (each && carriedFor !== each) {
        carriedFor = each
        carried = 0
      }
      if (each !== undefined && each.direction === direction && carried >= each.after) {
        from.pause()
        paused.push(from)
        from.unshift(chunk)
        each.fire()
        return
      }
      carried += chunk.length
      count(direction, chunk.length)
      if (!to.destroyed) to.write(chunk)
    })
    from.on('end', () => to.end())
    from.on('error', () => to.destroy())
    from.on('close', () => to.destroy())
  }

  const listen = (): Promise<void> =>
    new Promise((resolve, reject) => {
      server = net.createServer((client) => {
        const upstream = net.connect(Number(targetPort), targetHost)
        sockets.add(client)
        sockets.add(upstream)
        client.on('close', () => sockets.delete(client))
        upstream.on('close', () => sockets.delete(upstream))
        pipe(client, upstream, 'up')
        pipe(upstream, client, 'down')
      })
      server.once('error', reject)
      server.listen(port, '127.0.0.1', () => resolve())
    })
  await listen()

  const cutAll = (): void => {
    for (const socket of sockets) socket.destroy()
    sockets.clear()
  }

  return {
    host: `127.0.0.1:${port}`,
    bytes: () => ({...counted}),
    stallEachAfter(direction, after) {
      return new Promise((resolve) => {
        each = {direction, after, fire: () => resolve()}
      })
    },
    resume() {
      each = undefined
      for (const socket of paused.splice(0)) socket.resume()
    },
    outageAfter(direction, after, ms) {
      return new Promise((resolve) => {
        trigger = {
          direction,
          at: counted[direction] + after,
          fire() {
            server.close()
            cutAll()
            setTimeout(() => void listen().then(resolve, resolve), ms)
          },
        }
      })
    },
    async stop() {
      each = undefined
      cutAll()
      await new Promise((resolve) => server.close(() => resolve(undefined)))
    },
  }
}
