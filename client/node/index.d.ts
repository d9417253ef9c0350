// Types of @stateside/client (hand-written; the code is plain JavaScript).

export { status } from '@grpc/grpc-js';

/** $STATESIDE_SOCKET if set and non-empty, else /tmp/stateside/stateside.sock. */
export function defaultSocketPath(): string;
/** The package's proto/ copy (made by `npm pack`) if present, else the repository checkout's proto/. */
export function defaultProtoDir(): string;

export interface ClientOptions {
  /** The sidecar's Unix socket. Default: defaultSocketPath(). */
  socketPath?: string;
  /** The directory holding stateside/v1/*.proto. Default: defaultProtoDir(). */
  protoDir?: string;
  /** Deadline of each call, retries included. Default 2000; at most 2^31-1 (as every *Ms here). */
  callTimeoutMs?: number;
  /** How long Client.connect waits for SERVING. Default 10000. */
  readyTimeoutMs?: number;
  /** Retries after the first attempt (retryable calls, UNAVAILABLE only). Default 3. */
  maxRetries?: number;
  /** The first retry waits in [initialBackoffMs/2, initialBackoffMs], then doubling. Default 20. */
  initialBackoffMs?: number;
  /** Default 1000; not below initialBackoffMs (RangeError). */
  maxBackoffMs?: number;
  /** getSession and updateSession on a SessionService.Pipe stream, batched, unary when it cannot. Default true. */
  pipe?: boolean;
}

/** A failed call. Act on `reason`, never on the message. */
export class StatesideError extends Error {
  readonly name: 'StatesideError';
  /** The gRPC status code (see `status`). */
  readonly code: number;
  /** Its name: 'NOT_FOUND', 'ABORTED', ... */
  readonly codeName: string;
  /** The ErrorInfo reason (error.proto), else the code's name. */
  readonly reason: string;
  /** ErrorInfo metadata ("field", "limit", "request_id", ...). */
  readonly metadata: Readonly<Record<string, string>>;
  /** metadata.field: the request field at fault. */
  readonly field?: string;
  /** metadata.limit: the limit's name. */
  readonly limit?: string;
}

/** A session named by its id or by the signed cookie value ("id.signature"). */
export type SessionKey = { id: string; cookie?: never } | { cookie: string; id?: never };

export type AttributeValue = string | Uint8Array;
export type AttributesIn = Record<string, AttributeValue>;

export interface SessionInfo {
  id: string;
  /** '' for an anonymous session. */
  userId: string;
  created: Date | null;
  lastAccess: Date | null;
  idleExpiry: Date | null;
  absoluteExpiry: Date | null;
  /** Incremented by every update; the expectedVersion of a compare-and-set. */
  version: bigint;
}

export interface Session<V = Buffer> extends SessionInfo {
  cookie: string;
  attributes: Record<string, V>;
}

export type SessionLimitPolicy = 'refuse' | 'endOldest';

export interface CreateSessionOptions {
  /** Absent, null or '': anonymous. */
  userId?: string | null;
  attributes?: AttributesIn;
  idleTtlMs?: number;
  absoluteTtlMs?: number;
  maxSessionsPerUser?: number;
  sessionLimitPolicy?: SessionLimitPolicy;
  /** Default: a new one per call (128 random bits). */
  requestId?: string;
  encoding?: BufferEncoding;
}

export interface RegenerateSessionOptions {
  /**
   * The owner for an anonymous session; absent or null: none asked for.
   * When the sidecar regenerated without it (before API revision 2), the
   * FAILED_PRECONDITION error carries the new session as `session`.
   */
  userId?: string | null;
  maxSessionsPerUser?: number;
  sessionLimitPolicy?: SessionLimitPolicy;
  requestId?: string;
  encoding?: BufferEncoding;
}

export interface UpdateSessionOptions {
  set?: AttributesIn;
  remove?: string[];
  expectedVersion?: bigint | number;
}

export interface UserSessionsPage {
  sessions: SessionInfo[];
  /** '' after the last page. */
  nextPageToken: string;
}

export type DrainStateName = 'serving' | 'draining' | 'drained' | 'unspecified';

export interface Instance {
  id: string;
  hostname: string;
  pid: number;
  startTime: Date | null;
  uptimeMs: number | null;
  version: string;
  drainState: DrainStateName;
  backend: string;
  adminAddress: string;
  ready: boolean;
  prestopDelayMs: number | null;
}

export interface Capabilities {
  pipe: boolean;
  sessionEvents: boolean;
  reflection: boolean;
  requestIds: boolean;
  realtimeResume: boolean;
  topology: 'memory' | 'standalone' | 'sentinel' | 'cluster' | 'unspecified';
}

export interface InstanceInfo {
  instance: Instance;
  apiRevision: number;
  capabilities: Capabilities;
}

export interface DrainEvent {
  state: DrainStateName;
  deadline: Date | null;
  /** Set with 'draining' for an app watcher: pass it to reportDrained. */
  drainToken: string;
}

/**
 * A server stream; cancel() and the Client's close() end it (the iteration
 * then ends quietly). A stream that fails before it is read throws its
 * StatesideError when it is.
 */
export interface Stream<T> extends AsyncIterable<T> {
  cancel(): void;
}

export interface ConnectionRef {
  connId: string;
  /** '' or absent: this instance. */
  instanceId?: string;
}

export type Target =
  | { room: string }
  | { userId: string }
  | { connection: ConnectionRef }
  | { all: true };

export type StreamPosition = Target & { sequence: bigint | number };

export interface DeliveryFields {
  target: 'room' | 'userId' | 'connection' | 'all' | 'unspecified';
  to: string;
  event: string;
  connIds: string[];
  sequence: bigint;
  publishedAt: Date | null;
  originInstance: string;
}

/**
 * With encoding 'utf8', a payload that is not UTF-8 stays a Buffer, with
 * undecoded: true.
 */
export type Delivery<P = Buffer> = DeliveryFields &
  ({ payload: P; undecoded?: undefined } | { payload: Buffer; undecoded: true });

export interface Gap {
  reason: string;
  dropped: bigint;
  fromTime: Date | null;
  toTime: Date | null;
  /** REASON_RESUME_INCOMPLETE: the resume point, as subscribe's `resume` takes it. */
  resume: (Target & { sequence: bigint }) | null;
  firstSequence: bigint;
}

export type RealtimeEvent<P = Buffer> =
  | ({ kind: 'delivery' } & Delivery<P>)
  | ({ kind: 'gap' } & Gap)
  | { kind: 'disconnect'; connIds: string[] };

export type SessionEventKind = 'created' | 'regenerated' | 'updated' | 'destroyed' | 'expired';

export type SessionEvent =
  | {
      kind: 'change';
      change: SessionEventKind | 'unspecified';
      sessionId: string;
      userId: string;
      time: Date | null;
      previousSessionId: string;
      /** UPDATED: the names of the attributes set or removed (sorted). */
      attributes: string[];
      originInstance: string;
    }
  | ({ kind: 'gap' } & Gap);

export type ServingStatus = 'UNKNOWN' | 'SERVING' | 'NOT_SERVING' | 'SERVICE_UNKNOWN';

export interface SubscribeOptions {
  connections?: { connId: string; userId?: string; rooms?: string[] }[];
  resume?: StreamPosition[];
  encoding?: BufferEncoding;
}

export class Client {
  /** No I/O: the first call finds out whether the sidecar is there. */
  constructor(options?: ClientOptions);
  /** A client whose sidecar serves (waits up to readyTimeoutMs). */
  static connect(options?: ClientOptions): Promise<Client>;
  readonly options: Readonly<Required<Omit<ClientOptions, 'protoDir'>>>;
  waitUntilReady(): Promise<void>;
  /** Ends the open streams (as their cancel()) and closes the connection. */
  close(): void;

  createSession(options: CreateSessionOptions & { encoding: BufferEncoding }): Promise<Session<string>>;
  createSession(options?: CreateSessionOptions): Promise<Session>;
  getSession(key: SessionKey, options: { touch?: boolean; encoding: BufferEncoding }): Promise<Session<string>>;
  getSession(key: SessionKey, options?: { touch?: boolean }): Promise<Session>;
  updateSession(key: SessionKey, options: UpdateSessionOptions): Promise<SessionInfo>;
  touchSession(key: SessionKey): Promise<SessionInfo>;
  destroySession(key: SessionKey): Promise<boolean>;
  regenerateSession(key: SessionKey, options: RegenerateSessionOptions & { encoding: BufferEncoding }): Promise<Session<string>>;
  regenerateSession(key: SessionKey, options?: RegenerateSessionOptions): Promise<Session>;
  listUserSessions(userId: string, options?: { pageSize?: number; pageToken?: string }): Promise<UserSessionsPage>;
  allUserSessions(userId: string): AsyncGenerator<SessionInfo>;
  destroyUserSessions(userId: string, options?: { keep?: SessionKey; closeConnections?: boolean }): Promise<number>;

  /** Resolves once the sidecar says `watching`. */
  watchSessionEvents(options?: { kinds?: SessionEventKind[] }): Promise<Stream<SessionEvent>>;

  setOptOut(subject: string, optedOut: boolean, options?: { ttlMs?: number }): Promise<void>;
  getOptOut(subject: string): Promise<boolean>;

  getInstance(): Promise<InstanceInfo>;
  listInstances(): Promise<Instance[]>;
  /** NOT_SERVING is a value (a draining sidecar), not an error. */
  checkHealth(service?: string): Promise<ServingStatus>;
  drain(options?: { holdUntilSignal?: boolean }): Promise<void>;
  reportDrained(drainToken?: string): Promise<void>;
  watchDrain(options?: { observer?: boolean }): Stream<DrainEvent>;

  registerConnection(connId: string, options?: { userId?: string; rooms?: string[] }): Promise<void>;
  unregisterConnection(connId: string): Promise<boolean>;
  join(connId: string, rooms: string[]): Promise<void>;
  leave(connId: string, rooms: string[]): Promise<void>;
  publish(target: Target, event: string, payload?: AttributeValue,
          options?: { exclude?: ConnectionRef[]; senderUserId?: string; requestId?: string }):
    Promise<{ sequence: bigint; instances: number }>;
  subscribe(options: SubscribeOptions & { encoding: BufferEncoding }): Promise<Stream<RealtimeEvent<string>>>;
  subscribe(options?: SubscribeOptions): Promise<Stream<RealtimeEvent>>;
  roomMembers(room: string, options?: { pageSize?: number; pageToken?: string }):
    Promise<{ count: number; members: ConnectionRef[]; nextPageToken: string }>;
  userConnections(userId: string): Promise<ConnectionRef[]>;
  /** The instances the operation was sent to. */
  joinConnections(of: Target, rooms: string[], options?: { exclude?: ConnectionRef[] }): Promise<number>;
  leaveConnections(of: Target, rooms: string[], options?: { exclude?: ConnectionRef[] }): Promise<number>;
  disconnectConnections(of: Target, options?: { exclude?: ConnectionRef[] }): Promise<number>;
  history(room: string, options: { afterSequence?: bigint | number; limit?: number; encoding: BufferEncoding }): Promise<{
    events: Delivery<string>[]; complete: boolean; lastSequence: bigint; firstSequence: bigint; more: boolean;
  }>;
  history(room: string, options?: { afterSequence?: bigint | number; limit?: number }): Promise<{
    events: Delivery[]; complete: boolean; lastSequence: bigint; firstSequence: bigint; more: boolean;
  }>;
}

export interface SessionsOptions {
  /** Default 'sid'. */
  cookieName?: string;
  /** Default '/'. */
  path?: string;
  domain?: string;
  /** Default true; false only for plain-HTTP development. */
  secure?: boolean;
  /** Default true. */
  httpOnly?: boolean;
  /** Default 'Lax'. */
  sameSite?: 'Strict' | 'Lax' | 'None';
  /** The cookie's Max-Age in milliseconds (whole seconds are sent). Default: none (a browser-session cookie). */
  maxAge?: number;
  /** Attribute values as strings in this encoding (default Buffers). */
  encoding?: BufferEncoding;
  /** The X-Instance-Id response header: default the sidecar's instance id; false: no header. */
  instanceId?: string | false;
}

type Done = (err: Error | null) => void;

/**
 * req.session: the attributes as properties (assign, delete), plus these
 * (an attribute named like one of them is reached through get/set). What a
 * request changes is written before its response ends, attribute by
 * attribute.
 */
export type RequestSession<V = Buffer | string> = {
  [attribute: string]: V | undefined | unknown;
} & {
  /** Unset until the session exists. */
  readonly id: string | undefined;
  readonly userId: string | undefined;
  readonly version: bigint | undefined;
  readonly created: Date | null | undefined;
  readonly lastAccess: Date | null | undefined;
  readonly idleExpiry: Date | null | undefined;
  readonly absoluteExpiry: Date | null | undefined;
  /** No session exists (yet) for this request. */
  readonly isNew: boolean;
  /** Changes not written yet. */
  readonly isModified: boolean;
  get(attribute: string): V | undefined;
  set(attribute: string, value: AttributeValue): void;
  save(options?: { expectedVersion?: bigint | number }): Promise<void>;
  save(done: Done): void;
  regenerate(options?: { userId?: string; maxSessionsPerUser?: number; sessionLimitPolicy?: SessionLimitPolicy }): Promise<void>;
  regenerate(done: Done): void;
  destroy(): Promise<void>;
  destroy(done: Done): void;
  reload(): Promise<void>;
  reload(done: Done): void;
};

/** A (req, res, next) middleware for Express or node:http: sets req.session. */
export function sessions(client: Client, options?: SessionsOptions):
  (req: import('node:http').IncomingMessage & { session?: RequestSession },
   res: import('node:http').ServerResponse, next: (err?: unknown) => void) => Promise<void>;

export interface GracefulShutdownOptions {
  /** Forward this process's first SIGTERM/SIGINT to the sidecar as a Drain. Default true. */
  forwardSignals?: boolean;
  /** Once the drain begins, a kept-alive connection idle this long is closed. Default 1000. */
  idleGraceMs?: number;
  /** On a second signal. Default: process.exit(1). */
  onSecondSignal?: () => void;
}

export interface GracefulShutdown {
  /** Resolves once the sidecar's drain state is watched. */
  watching: Promise<void>;
  /** Resolves when the drain begins. */
  draining: Promise<{ reason: string; deadline: Date | null; drainToken: string }>;
  /** Resolves when it is over: forced if the deadline cut connections; reported to the sidecar. */
  drained: Promise<{ reason: string; forced: boolean; reported: boolean }>;
  /** Stops watching and listening for signals (a drain under way goes on). */
  close(): void;
}

/** The http.Server's part in the sidecar's coordinated drain. */
export function gracefulShutdown(server: import('node:http').Server, client: Client,
                                 options?: GracefulShutdownOptions): GracefulShutdown;

export interface SocketIoAdapterOptions {
  /**
   * A failed publish, join, leave, cluster-wide operation (fetchSockets
   * excepted: it rejects) or subscription. Default: a process warning.
   */
  onError?: (err: Error) => void;
}

/**
 * A Socket.IO (v4) adapter class whose rooms and broadcasts are the
 * sidecar's: `new Server(httpServer, { adapter: createSocketIoAdapter(client) })`.
 * socket.io is a peer dependency. Cluster-wide: broadcasts, fetchSockets
 * (remote sockets with id and the queried rooms they are in, no handshake
 * or data), socketsJoin, socketsLeave, disconnectSockets and serverSideEmit
 * (without acknowledgement: an Error). Its instances also have `ready`
 * (a Promise: this adapter receives serverSideEmit and the others'
 * socketsJoin/socketsLeave) and `flush()` (a Promise: what was sent so far
 * has been published), and emit `gap`.
 */
export function createSocketIoAdapter(client: Client, options?: SocketIoAdapterOptions): any;

export interface WebSocketsOptions {
  /** The upgrade path. Default '/ws'. */
  path?: string;
  /** The session cookie's name, as sessions()'s. Default 'sid'. */
  cookieName?: string;
  /**
   * The origins (lower case, `https://host[:port]`) a browser's upgrade may
   * come from; without an Origin header, Sec-Fetch-Site must be same-origin
   * or none; neither: not a browser, allowed. Default none.
   */
  origins?: string[];
  /** The hello frame's instance. Default the sidecar's instance id. */
  instanceId?: string;
  /** What gracefulShutdown returned: its drain closes the sockets with 1012 and refuses upgrades (503). */
  shutdown?: GracefulShutdown;
  /** A socket with this many frames queued (default 256) or bytes (default 1 MiB) more is closed with 1008. */
  maxQueuedMessages?: number;
  maxQueuedBytes?: number;
  /** The largest message a browser may send. Default 16384. */
  maxMessageBytes?: number;
  /** A failed subscription, join, leave or unregister; a slow client closed. Default: a process warning. */
  onError?: (err: Error) => void;
}

export interface WebSockets {
  /** Resolves once the sidecar's deliveries are subscribed to (once per Client). */
  ready: Promise<void>;
  /** The connection ids of this server's open sockets. */
  connections(): string[];
  /** Closes this server's sockets with `code` (default 1012) and refuses upgrades from now on (503). */
  closeAll(code?: number, reason?: string): void;
  /** Stops taking upgrades at `path` (open sockets stay); the last of a Client ends its subscription. */
  close(): void;
}

/**
 * Plain WebSockets (the `ws` package, an optional peer dependency) at
 * `path` of an http.Server, as radar-app serves /ws: a live session
 * cookie and an allowed origin; each socket a connection registered with
 * the sidecar under the session's user; {"join":room}/{"leave":room} from
 * the browser; the sidecar's deliveries sent as radar-app's JSON frames
 * (hello first, then {event, ...payload, sequence}); closed with 1008 when
 * the session ends (Disconnect, stateside.close, session-ended) or the
 * client does not read.
 */
export function attachWebSockets(server: import('node:http').Server, client: Client,
                                 options?: WebSocketsOptions): WebSockets;
