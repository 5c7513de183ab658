// Who may look: the dashboard is never public. A request is let in with the Worker secret
// DASHBOARD_TOKEN, as `Authorization: Bearer TOKEN` (scripts) or as the session cookie that
// the token form sets (people). The cookie holds an HMAC of the token, never the token, so
// changing the secret logs every browser out. Without DASHBOARD_TOKEN nobody is let in.

const COOKIE = "wpb_session";
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

/// The session cookie's value for `token`.
export function sessionValue(token) {
  return hmac(token, "wpbackup-dashboard-session-v1");
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

/// Whether the request carries the token or a valid session.
export async function allowed(request, env) {
  if (!env.DASHBOARD_TOKEN) return false;
  const auth = request.headers.get("Authorization") ?? "";
  if (auth.startsWith("Bearer ")) return tokenMatches(env, auth.slice(7).trim());
  const session = cookie(request, COOKIE);
  return session !== null && same(session, await sessionValue(env.DASHBOARD_TOKEN));
}

/// The Set-Cookie header of a new session (Secure when served over https).
export async function sessionCookie(request, env) {
  const secure = new URL(request.url).protocol === "https:" ? "; Secure" : "";
  const value = await sessionValue(env.DASHBOARD_TOKEN);
  return `${COOKIE}=${value}; Path=/; HttpOnly; SameSite=Strict; Max-Age=2592000${secure}`;
}
