// Who may look: the dashboard is never public. A request is let in with the Worker secret
// DASHBOARD_TOKEN, as `Authorization: Bearer TOKEN` (scripts) or as the session cookie that
// the token form sets (people). The cookie never holds the token: it holds its expiry (12
// hours after the login) and an HMAC of that expiry under the token, so a session ends by
// itself, at logout (the cookie is cleared), and for every browser when the secret changes.
// The token form is rate limited per client address (the LOGIN_LIMIT binding of
// wrangler.toml; a per-isolate counter where it is missing). Without DASHBOARD_TOKEN nobody
// is let in.

const COOKIE = "wpb_session";
const SESSION_VERSION = "v2";
/// How long a session lasts: 12 hours.
export const SESSION_SECONDS = 12 * 3600;
/// Token form tries per client address and minute.
export const LOGIN_TRIES_PER_MINUTE = 5;
const encoder = new TextEncoder();

/// HMAC-SHA256 of `message` under `key`, base64url.
async function hmac(key, message) {
  const k = await crypto.subtle.importKey(
    "raw",
    encoder.encode(key),
    { name: "HMAC", hash: "SHA-256" },
    false,
    ["sign"],
  );
  const sig = new Uint8Array(await crypto.subtle.sign("HMAC", k, encoder.encode(message)));
  return btoa(String.fromCharCode(...sig))
    .replaceAll("+", "-")
    .replaceAll("/", "_")
    .replaceAll("=", "");
}

/// Equal strings, in a time that does not depend on where they differ.
function same(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i += 1) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/// The signature of a session that ends at `expires` (Unix seconds).
function sessionSignature(token, expires) {
  return hmac(token, `wpbackup-dashboard-session-${SESSION_VERSION}|${expires}`);
}

/// The session cookie's value for `token`, ending at `expires` (Unix seconds):
/// `v2.EXPIRES.SIGNATURE`.
export async function sessionValue(token, expires) {
  return `${SESSION_VERSION}.${expires}.${await sessionSignature(token, expires)}`;
}

/// Whether `given` is the dashboard's token (compared as HMACs: same length, constant time).
export async function tokenMatches(env, given) {
  if (!env.DASHBOARD_TOKEN || !given) return false;
  const [a, b] = await Promise.all([
    hmac(env.DASHBOARD_TOKEN, given),
    hmac(env.DASHBOARD_TOKEN, env.DASHBOARD_TOKEN),
  ]);
  return same(a, b);
}

function cookie(request, name) {
  const header = request.headers.get("Cookie") ?? "";
  for (const part of header.split(";")) {
    const [k, ...v] = part.trim().split("=");
    if (k === name) return v.join("=");
  }
  return null;
}

/// Whether `value` is a session cookie of `token` that has not ended.
async function sessionValid(token, value) {
  const m = /^v2\.(\d{1,12})\.([A-Za-z0-9_-]{43})$/.exec(value ?? "");
  if (!m) return false;
  const expires = Number(m[1]);
  if (!(expires > Date.now() / 1000)) return false;
  return same(m[2], await sessionSignature(token, expires));
}

/// Whether the request carries the token or a valid session.
export async function allowed(request, env) {
  if (!env.DASHBOARD_TOKEN) return false;
  const auth = request.headers.get("Authorization") ?? "";
  if (auth.startsWith("Bearer ")) return tokenMatches(env, auth.slice(7).trim());
  return sessionValid(env.DASHBOARD_TOKEN, cookie(request, COOKIE));
}

function secureFlag(request) {
  return new URL(request.url).protocol === "https:" ? "; Secure" : "";
}

/// The Set-Cookie header of a new session (Secure when served over https).
export async function sessionCookie(request, env) {
  const expires = Math.floor(Date.now() / 1000) + SESSION_SECONDS;
  const value = await sessionValue(env.DASHBOARD_TOKEN, expires);
  return `${COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=${SESSION_SECONDS}${secureFlag(request)}`;
}

/// The Set-Cookie header that ends the session in this browser.
export function logoutCookie(request) {
  return `${COOKIE}=; Path=/; HttpOnly; SameSite=Strict; Max-Age=0${secureFlag(request)}`;
}

/// Token form tries by client address in this isolate, where LOGIN_LIMIT is not bound.
const localTries = new Map();

/// Whether the client of `request` may try the token form again now: LOGIN_TRIES_PER_MINUTE
/// tries a minute per client address.
export async function loginAllowed(request, env) {
  const key = request.headers.get("CF-Connecting-IP") ?? "unknown";
  if (env.LOGIN_LIMIT && typeof env.LOGIN_LIMIT.limit === "function") {
    const { success } = await env.LOGIN_LIMIT.limit({ key });
    return success;
  }
  const minute = Math.floor(Date.now() / 60000);
  for (const [k, v] of localTries) if (v.minute !== minute) localTries.delete(k);
  const entry = localTries.get(key) ?? { minute, tries: 0 };
  entry.tries += 1;
  localTries.set(key, entry);
  return entry.tries <= LOGIN_TRIES_PER_MINUTE;
}
