// Package auth authenticates the callers of Fanout's data plane
// (docs/security.md) and tells the gateway who they are before it reads a body:
//
//   - API keys, each bound to a tenant, sent as "Authorization: Bearer
//     <key>" or "X-Api-Key: <key>". Only their SHA-256 hashes are in the
//     config; a key is looked up by its hash and the hash compared in
//     constant time. NewKey makes a key and its hash.
//   - JWTs, sent as "Authorization: Bearer <jwt>", checked with
//     github.com/golang-jwt/jwt/v5 against a JWK Set fetched from the
//     configured URL (parsed by github.com/MicahParks/jwkset): algorithms
//     pinned by the config (never none or HMAC), exp required, nbf, iat,
//     iss and aud checked with a small leeway. The key set is cached,
//     refreshed hourly, and refreshed (rate-limited) when a token names an
//     unknown key id, so that an issuer's key rotation needs no restart.
//   - A Guard per route applies the route's auth mode and its list of
//     allowed tenants: 401 when the credential is missing or invalid, 403
//     when its tenant may not use the route.
//
// The Identity it returns names the tenant (kept with the message), the
// key name or subject (for logs and rate limits) and the header that held
// the credential, which the gateway drops so that it is neither forwarded
// to targets nor stored.
package auth
