// A real OpenID Connect provider for Tandem's tests (panva/oidc-provider), on loopback.
//
//   PORT=0 REDIRECT_URIS=http://127.0.0.1:8004/auth/callback \
//   OIDC_ACCOUNTS='{"pat": {"groups": ["sre"]}}' node provider.mjs
//
// Prints one JSON line {"issuer": ...} once it listens. Clients: "tandem-board" (the board:
// authorization code with PKCE) and "tandem-cli" (the device authorization flow), both public.
// Access tokens are JWTs for the audience "tandem" carrying the account's groups; people sign
// in on the provider's own development login page (any password).
import { generateKeyPairSync, randomBytes } from "node:crypto";
import { createServer } from "node:http";

import Provider from "oidc-provider";

const accounts = JSON.parse(process.env.OIDC_ACCOUNTS || "{}");
const redirectUris = (process.env.REDIRECT_URIS || "").split(",").filter(Boolean);
const { privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
const signingKey = { ...privateKey.export({ format: "jwk" }), kid: randomBytes(6).toString("hex"),
  use: "sig", alg: "RS256" };

const server = createServer();
await new Promise((resolve) => server.listen(Number(process.env.PORT || 0), "127.0.0.1", resolve));
const issuer = `http://127.0.0.1:${server.address().port}`;

const groupsOf = (accountId) => (accounts[accountId] && accounts[accountId].groups) || [];

const provider = new Provider(issuer, {
  clients: [
    { client_id: "tandem-board", token_endpoint_auth_method: "none",
      redirect_uris: redirectUris, grant_types: ["authorization_code"],
      response_types: ["code"] },
    { client_id: "tandem-cli", token_endpoint_auth_method: "none", redirect_uris: [],
      grant_types: ["urn:ietf:params:oauth:grant-type:device_code"], response_types: [] },
  ],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(16).toString("hex")] },
  pkce: { methods: ["S256"], required: () => true },
  scopes: ["openid", "profile"],
  claims: { openid: ["sub"], profile: ["preferred_username", "groups"] },
  features: {
    devInteractions: { enabled: true },
    deviceFlow: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => "urn:tandem:api",
      useGrantedResource: () => true,
      getResourceServerInfo: () => ({
        scope: "tandem", audience: "tandem", accessTokenTTL: 600, accessTokenFormat: "jwt",
        jwt: { sign: { alg: "RS256" } },
      }),
    },
  },
  async findAccount(ctx, id) {
    return { accountId: id,
      async claims() { return { sub: id, preferred_username: id, groups: groupsOf(id) }; } };
  },
  async extraTokenClaims(ctx, token) {
    return token.accountId
      ? { preferred_username: token.accountId, groups: groupsOf(token.accountId) } : undefined;
  },
  // First-party clients: consent is given (a person only signs in).
  async loadExistingGrant(ctx) {
    const grantId = (ctx.oidc.result && ctx.oidc.result.consent && ctx.oidc.result.consent.grantId)
      || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
    if (grantId) return ctx.oidc.provider.Grant.find(grantId);
    const grant = new ctx.oidc.provider.Grant({ clientId: ctx.oidc.client.clientId,
      accountId: ctx.oidc.session.accountId });
    grant.addOIDCScope("openid profile");
    grant.addResourceScope("urn:tandem:api", "tandem");
    await grant.save();
    return grant;
  },
});
provider.on("server_error", (ctx, error) => console.error("server_error", error));
server.on("request", provider.callback());
console.log(JSON.stringify({ issuer }));
for (const signal of ["SIGTERM", "SIGINT"]) process.on(signal, () => server.close(() => process.exit(0)));
