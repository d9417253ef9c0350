// sessions(client, options): a (req, res, next) middleware for Express (or
// any framework with Node's http request and response) that loads the
// request's session from the sidecar and keeps the session cookie in step.
// No framework is a dependency: it reads req.headers.cookie and writes
// Set-Cookie with res.getHeader/res.setHeader.
'use strict';
const { StatesideError } = require('./errors');
const c = require('./convert');

const SAME_SITE = ['Strict', 'Lax', 'None'];

// The value of cookie `name` in a Cookie header, or undefined.
function cookieValue(header, name) {
  for (const part of (header ?? '').split(';')) {
    const eq = part.indexOf('=');
    if (eq > 0 && part.slice(0, eq).trim() === name) return part.slice(eq + 1).trim();
  }
  return undefined;
}

function appendSetCookie(res, line) {
  const prev = res.getHeader('Set-Cookie');
  const lines = prev === undefined ? [] : Array.isArray(prev) ? prev : [String(prev)];
  // One Set-Cookie of ours per response: a later one replaces an earlier.
  const name = line.slice(0, line.indexOf('=') + 1);
  res.setHeader('Set-Cookie', [...lines.filter((l) => !l.startsWith(name)), line]);
}

function sessions(client, options = {}) {
  const o = c.checkOptions(options, ['cookieName', 'path', 'domain', 'secure', 'sameSite', 'encoding'],
                           'sessions');
  const name = o.cookieName ?? 'sid';
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(name)) throw new TypeError('cookieName must be a cookie name token');
  const sameSite = o.sameSite ?? 'Lax';
  if (!SAME_SITE.includes(sameSite)) throw new TypeError(`sameSite must be one of ${SAME_SITE.join(', ')}`);
  const encoding = c.checkEncoding(o.encoding, 'sessions');
  const attributes = [`Path=${o.path ?? '/'}`, 'HttpOnly', `SameSite=${sameSite}`];
  if (o.domain !== undefined) attributes.push(`Domain=${c.text(o.domain, 'domain', { required: true })}`);
  // Secure unless switched off (plain-HTTP development).
  if (o.secure !== false) attributes.push('Secure');
  const setCookie = (res, value) => appendSetCookie(res, [`${name}=${value}`, ...attributes].join('; '));
  const clearCookie = (res) => appendSetCookie(res, [`${name}=`, ...attributes, 'Max-Age=0'].join('; '));
  const withEncoding = (opts) => (encoding === undefined || (opts && opts.encoding !== undefined)
    ? opts : { ...opts, encoding });

  return async function statesideSessions(req, res, next) {
    try {
      const cookie = cookieValue(req.headers.cookie, name);
      req.session = null;
      if (cookie) {
        try {
          req.session = await client.getSession({ cookie }, withEncoding({}));
        } catch (err) {
          // Unknown, expired, destroyed or forged: alike; the stale cookie goes.
          if (!(err instanceof StatesideError && err.reason === 'NOT_FOUND')) throw err;
          clearCookie(res);
        }
      }
      req.stateside = {
        client,
        // A new session (createSession's options), its cookie set.
        async create(opts = {}) {
          req.session = await client.createSession(withEncoding(opts));
          setCookie(res, req.session.cookie);
          return req.session;
        },
        // updateSession of this request's session (pass expectedVersion:
        // req.session.version for compare-and-set); req.session then shows
        // this write over what was read (not other writers' changes since).
        async update(opts = {}) {
          if (!req.session) throw new TypeError('the request has no session');
          const info = await client.updateSession({ id: req.session.id }, opts);
          const attrs = { ...req.session.attributes,
                          ...c.attributesOut(c.attributesIn(opts.set, 'set'), encoding) };
          for (const n of opts.remove ?? []) delete attrs[n];
          req.session = { ...req.session, ...info, attributes: attrs };
          return req.session;
        },
        // A new id (login: session fixation defence), optionally with an
        // owner; a request without a session gets a new one for opts.userId.
        async regenerate(opts = {}) {
          req.session = req.session
            ? await client.regenerateSession({ id: req.session.id }, withEncoding(opts))
            : await client.createSession(withEncoding(opts));
          setCookie(res, req.session.cookie);
          return req.session;
        },
        // Ends the session (logout) and clears the cookie.
        async destroy() {
          if (req.session) await client.destroySession({ id: req.session.id });
          req.session = null;
          clearCookie(res);
        },
      };
      next();
    } catch (err) {
      next(err);
    }
  };
}

module.exports = { sessions, cookieValue };
