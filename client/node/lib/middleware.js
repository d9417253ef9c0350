// sessions(client, options): a (req, res, next) middleware for Express (or
// any framework with Node's http request and response) in the manner of
// express-session: req.session is the request's session, its attributes
// read and assigned as properties, and only what the request changed is
// written to the sidecar (one updateSession with the attributes set and
// removed, never the whole session), before the response ends. No
// framework is a dependency: it reads req.headers.cookie and writes
// Set-Cookie with res.getHeader/res.setHeader.
'use strict';
const { StatesideError } = require('./errors');
const c = require('./convert');

const SAME_SITE = ['Strict', 'Lax', 'None'];
// Properties of req.session that are not attributes: its metadata and
// methods. An attribute of one of these names is reached through get/set.
const METADATA = ['id', 'userId', 'created', 'lastAccess', 'idleExpiry', 'absoluteExpiry', 'version'];
const METHODS = ['save', 'regenerate', 'destroy', 'reload', 'get', 'set', 'isNew', 'isModified'];
const RESERVED = new Set([...METADATA, ...METHODS]);

// The values of cookie `name` in a Cookie header, in order (a browser
// sends one per matching Path and Domain: a sibling subdomain can plant one
// that comes first).
function cookieValues(header, name) {
  const values = [];
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) values.push(part.slice(eq + 1).trim());
  }
  return values;
}
// How many of a request's cookies of the session's name are tried.
const MAX_COOKIES_TRIED = 4;

// The live session (as client.getSession answers) of the first of
// `cookies` that names one (null: none does).
async function sessionOfCookies(client, cookies) {
  for (const cookie of cookies.slice(0, MAX_COOKIES_TRIED)) {
    try {
      return await client.getSession({ cookie });
    } catch (err) {
      // Unknown, expired, destroyed or forged: alike.
      if (!(err instanceof StatesideError && err.reason === 'NOT_FOUND')) throw err;
    }
  }
  return null;
}

function appendSetCookie(res, line) {
  const prev = res.getHeader('Set-Cookie');
  const lines = prev === undefined ? [] : Array.isArray(prev) ? prev : [String(prev)];
  // One Set-Cookie of ours per response: a later one replaces an earlier.
  const name = line.slice(0, line.indexOf('=') + 1);
  res.setHeader('Set-Cookie', [...lines.filter((l) => !l.startsWith(name)), line]);
}

// A promise-returning method that also takes a trailing node-style callback
// (express-session's methods take one).
function withCallback(fn) {
  return (...args) => {
    const cb = typeof args[args.length - 1] === 'function' ? args.pop() : null;
    const p = fn(...args);
    if (!cb) return p;
    p.then(() => cb(null), (err) => cb(err));
    return undefined;
  };
}

function cookieAttributes(o) {
  const sameSite = o.sameSite ?? 'Lax';
  if (!SAME_SITE.includes(sameSite)) throw new TypeError(`sameSite must be one of ${SAME_SITE.join(', ')}`);
  for (const flag of ['httpOnly', 'secure']) {
    if (o[flag] !== undefined && typeof o[flag] !== 'boolean') throw new TypeError(`${flag} must be a boolean`);
  }
  const path = c.text(o.path ?? '/', 'path', { required: true });
  if (/[;\s]/.test(path)) throw new TypeError('path must not contain ";" or white space');
  const attributes = [`Path=${path}`];
  if (o.domain !== undefined) attributes.push(`Domain=${c.text(o.domain, 'domain', { required: true })}`);
  if (o.httpOnly !== false) attributes.push('HttpOnly');
  attributes.push(`SameSite=${sameSite}`);
  // Secure unless switched off (plain-HTTP development); SameSite=None needs it.
  if (o.secure !== false) attributes.push('Secure');
  else if (sameSite === 'None') throw new TypeError('sameSite None needs secure');
  if (o.maxAge !== undefined) {
    if (!Number.isSafeInteger(o.maxAge) || o.maxAge < 0) {
      throw new TypeError('maxAge must be a non-negative integer (ms)');
    }
    attributes.push(`Max-Age=${Math.floor(o.maxAge / 1000)}`);
  }
  return attributes;
}

function sessions(client, options = {}) {
  const o = c.checkOptions(options, ['cookieName', 'path', 'domain', 'secure', 'httpOnly', 'sameSite', 'maxAge',
                                     'encoding', 'instanceId'], 'sessions');
  const name = o.cookieName ?? 'sid';
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new TypeError('cookieName must be a cookie name token');
  const encoding = c.checkEncoding(o.encoding, 'sessions');
  const attributes = cookieAttributes(o);
  // Clearing drops Max-Age for 0; the other attributes must match the set cookie's.
  const clearAttributes = [...attributes.filter((a) => !a.startsWith('Max-Age=')), 'Max-Age=0'];
  const setCookie = (res, value) => appendSetCookie(res, [`${name}=${value}`, ...attributes].join('; '));
  const clearCookie = (res) => appendSetCookie(res, [`${name}=`, ...clearAttributes].join('; '));
  // A session as the request sees it: its calls read Buffers, decoded here
  // with `encoding` where they decode and left Buffers where they do not (a
  // value another client wrote), so such a value never fails a request, nor
  // a write that went through.
  const decoded = (session) => {
    if (encoding === undefined) return session;
    const attributes = {};
    for (const [k, v] of Object.entries(session.attributes ?? {})) {
      try {
        Object.assign(attributes, c.attributesOut({ [k]: v }, encoding));
      } catch (err) {
        if (!(err instanceof TypeError)) throw err;
        attributes[k] = v;
      }
    }
    return { ...session, attributes };
  };
  // X-Instance-Id: the sidecar's instance (the pod's identity), asked once;
  // instanceId: false leaves the header out, a string names it.
  let instanceId = o.instanceId === false ? null
    : o.instanceId !== undefined ? Promise.resolve(c.text(o.instanceId, 'instanceId', { required: true }))
    : undefined;
  const instance = () => {
    if (instanceId === undefined) {
      instanceId = client.getInstance().then((i) => i.instance.id, (err) => {
        instanceId = undefined;  // asked again by the next request
        throw err;
      });
    }
    return instanceId;
  };

  // The session of one request. `stored`: the sidecar's session as last
  // read or written (null: none yet); `attrs`: its attributes as the
  // request sees them; `changed`/`removed`: what save() writes.
  function requestSession(req, res, stored) {
    const state = { stored, attrs: { ...(stored?.attributes ?? {}) }, changed: new Map(), removed: new Set() };
    const value = (v, attr) => {
      // Checked at assignment, not at save: the error points at the line.
      c.attributesIn({ [attr]: v }, 'session');
      return v;
    };
    const setAttr = (attr, v) => {
      state.attrs[attr] = value(v, attr);
      state.changed.set(attr, v);
      state.removed.delete(attr);
    };
    const removeAttr = (attr) => {
      delete state.attrs[attr];
      state.changed.delete(attr);
      if (state.stored) state.removed.add(attr);
    };
    const modified = () => state.changed.size > 0 || state.removed.size > 0;
    const adopt = (session) => {
      state.stored = session;
      state.attrs = { ...session.attributes };
      state.changed.clear();
      state.removed.clear();
    };

    // Writes what this request changed: a new session (with the attributes
    // set; its cookie set) or one updateSession of just those attributes.
    // opts.expectedVersion: compare-and-set (ABORTED, reason
    // VERSION_MISMATCH, when another write came first). The changes are
    // taken when the call starts: a save that fails drops them (req.session
    // shows the stored values again), so the response's end does not write
    // them after all, without the condition; changes made meanwhile stay.
    async function save(opts = {}) {
      const so = c.checkOptions(opts, ['expectedVersion'], 'save');
      if (!modified()) return;
      if (!state.stored && res.headersSent) {
        throw new Error('a new session\'s cookie cannot follow the response headers: save first');
      }
      const set = Object.fromEntries(state.changed);
      const remove = [...state.removed];
      state.changed.clear();
      state.removed.clear();
      try {
        if (!state.stored) {
          state.stored = decoded(await client.createSession({ attributes: set }));
          setCookie(res, state.stored.cookie);
          return;
        }
        const info = await client.updateSession({ id: state.stored.id }, { set, remove, ...so });
        // Ours over what was read (other writers' changes since are not read back).
        const ours = decoded({ attributes: c.attributesOut(c.attributesIn(set, 'set')) }).attributes;
        const attributes = { ...state.stored.attributes, ...ours };
        for (const n of remove) delete attributes[n];
        state.stored = { ...state.stored, ...info, attributes };
      } catch (err) {
        for (const n of [...Object.keys(set), ...remove]) {
          if (state.changed.has(n) || state.removed.has(n)) continue;
          if (state.stored && Object.hasOwn(state.stored.attributes, n)) state.attrs[n] = state.stored.attributes[n];
          else delete state.attrs[n];
        }
        throw err;
      }
    }
    // A new id and cookie (login: session fixation defence), the attributes
    // kept (an anonymous cart comes along), userId its owner; this
    // request's changes are written first. Without a session: a new one.
    async function regenerate(opts = {}) {
      const ro = c.checkOptions(opts, ['userId', 'maxSessionsPerUser', 'sessionLimitPolicy'], 'regenerate');
      if (!state.stored) {
        adopt(decoded(await client.createSession({ ...ro, attributes: Object.fromEntries(state.changed) })));
      } else {
        await save();
        adopt(decoded(await client.regenerateSession({ id: state.stored.id }, ro)));
      }
      setCookie(res, state.stored.cookie);
    }
    // Ends the session (logout) and clears the cookie; req.session is then
    // a new, empty one (saved only if the request sets an attribute).
    async function destroy() {
      if (state.stored) await client.destroySession({ id: state.stored.id });
      Object.assign(state, { stored: null, attrs: {} });
      state.changed.clear();
      state.removed.clear();
      clearCookie(res);
    }
    // Reads the session again, dropping this request's unsaved changes.
    async function reload() {
      if (!state.stored) return;
      adopt(decoded(await client.getSession({ id: state.stored.id }, { touch: false })));
    }
    const methods = {
      save: withCallback(save),
      regenerate: withCallback(regenerate),
      destroy: withCallback(destroy),
      reload: withCallback(reload),
      get: (attr) => state.attrs[attr],
      set: (attr, v) => { setAttr(attr, v); },
    };
    const checkName = (attr) => {
      if (typeof attr !== 'string') throw new TypeError('session attribute names are strings');
      if (RESERVED.has(attr)) throw new TypeError(`"${attr}" is not an attribute of req.session: use get/set`);
      return attr;
    };
    const session = new Proxy({}, {
      get(_, p) {
        if (typeof p !== 'string') return undefined;
        if (Object.hasOwn(methods, p)) return methods[p];
        if (p === 'isNew') return state.stored === null;
        if (p === 'isModified') return modified();
        if (METADATA.includes(p)) return state.stored?.[p];
        return Object.hasOwn(state.attrs, p) ? state.attrs[p] : undefined;
      },
      set(_, p, v) {
        setAttr(checkName(p), v);
        return true;
      },
      deleteProperty(_, p) {
        removeAttr(checkName(p));
        return true;
      },
      has: (_, p) => typeof p === 'string' && Object.hasOwn(state.attrs, p),
      ownKeys: () => Reflect.ownKeys(state.attrs),
      getOwnPropertyDescriptor: (_, p) => (typeof p === 'string' && Object.hasOwn(state.attrs, p)
        ? { value: state.attrs[p], writable: true, enumerable: true, configurable: true } : undefined),
      defineProperty: () => false,
    });
    return { session, save, modified };
  }

  // The response's end waits for the save of what the request changed (so
  // that a new session's Set-Cookie goes with the headers). A failed save
  // before the headers went out answers 500 (401 when the session ended
  // meanwhile: a logout in another tab) instead of the app's response.
  function saveOnEnd(res, pending) {
    const end = res.end;
    res.end = function endAfterSave(...args) {
      res.end = end;
      if (!pending.modified()) return end.apply(res, args);
      pending.save().then(() => end.apply(res, args), (err) => {
        if (res.headersSent) {
          res.destroy(err);
          return;
        }
        const ended = err instanceof StatesideError && err.reason === 'NOT_FOUND';
        res.statusCode = ended ? 401 : 500;
        res.setHeader('Content-Type', 'text/plain; charset=utf-8');
        res.removeHeader('Content-Length');
        end.call(res, ended ? 'session ended\n' : `session not saved: ${err.message}\n`);
      });
      return res;
    };
  }

  const load = async (cookies) => {
    const stored = await sessionOfCookies(client, cookies);
    return stored === null ? null : decoded(stored);
  };

  return async function statesideSessions(req, res, next) {
    try {
      const id = instanceId === null ? null : await instance();
      if (id !== null) res.setHeader('X-Instance-Id', id);
      const cookies = cookieValues(req.headers.cookie, name).filter((v) => v !== '');
      const stored = await load(cookies);
      if (stored === null && cookies.length > 0) clearCookie(res);  // the stale cookie goes
      const pending = requestSession(req, res, stored);
      req.session = pending.session;
      saveOnEnd(res, pending);
    } catch (err) {
      next(err);
      return;
    }
    // Outside the try: an exception of the next handler is not this one's
    // to report (next must be called once).
    next();
  };
}

module.exports = { sessions, cookieValues, sessionOfCookies };
