// An independent OpenID Provider for the bridge's tests, built on node-oidc-provider.
//
// Usage: node provider.mjs CONFIG.json
//
// The tests start it (tests/support/oidc_provider.py) with a JSON file that says which clients
// and accounts exist. It listens on 127.0.0.1 (port 0 picks a free one), builds its issuer
// from the bound port, and prints one JSON line {"issuer": ..., "port": ...} on stdout when it
// is ready. It keeps everything in memory and exits on SIGTERM or SIGINT.
//
// CONFIG.json:
//   host, port                  where to listen (default 127.0.0.1 and 0)
//   clients                     oidc-provider client metadata, as-is (client_id, client_secret
//                               or token_endpoint_auth_method "none", redirect_uris, ...)
//                               plus "skip_consent": true for a client that gets no consent
//                               screen (its grant covers whatever it asks for)
//   registration_token          enables dynamic client registration (POST /reg) with this
//                               initial access token, for clients made per test
//   accounts                    [{sub, password?, claims: {email, name, groups, ...}}]
//   claims                      scope -> claim names (default: openid, email, profile, groups)
//   id_token_claims             true (default): scope claims go into the ID token too, not only
//                               to userinfo (oidc-provider's conformIdTokenClaims off)
//
// Sign-in uses oidc-provider's built-in development pages: the login form (fields "login" and
// "password", button "Sign-in") and the consent form (button "Continue"). Those pages accept any
// password; this script checks it when the account has one, and sends unknown logins and wrong
// passwords back to the login form, so a test can also prove that a bad sign-in fails.

import { generateKeyPairSync, randomBytes, randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:http';

import Provider from 'oidc-provider';

const configPath = process.argv[2];
if (!configPath) {
  console.error('usage: node provider.mjs CONFIG.json');
  process.exit(2);
}
const config = JSON.parse(readFileSync(configPath, 'utf8'));

const accounts = new Map((config.accounts ?? []).map((account) => [account.sub, account]));

// A fresh signing key per run: tests fetch the JWKS, they never pin a key.
function signingKey() {
  const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  return { ...privateKey.export({ format: 'jwk' }), kid: randomUUID(), use: 'sig', alg: 'RS256' };
}

async function readForm(req) {
  const chunks = [];
  for await (const chunk of req) chunks.push(chunk);
  return Object.fromEntries(new URLSearchParams(Buffer.concat(chunks).toString('utf8')));
}

function configuration() {
  return {
    clients: config.clients ?? [],
    findAccount(_ctx, id) {
      const account = accounts.get(id);
      if (!account) return undefined;
      return {
        accountId: id,
        claims() {
          return { ...(account.claims ?? {}), sub: id };
        },
      };
    },
    claims: config.claims ?? {
      openid: ['sub'],
      email: ['email', 'email_verified'],
      profile: ['name', 'given_name', 'family_name', 'preferred_username'],
      groups: ['groups'],
    },
    conformIdTokenClaims: !(config.id_token_claims ?? true),
    // Authorization code + PKCE for every client, public or confidential; only S256 exists.
    pkce: { required: () => true },
    jwks: { keys: [signingKey()] },
    cookies: { keys: [randomBytes(32).toString('base64url')] },
    extraClientMetadata: {
      properties: ['skip_consent'],
      validator(_ctx, key, value) {
        if (value !== undefined && typeof value !== 'boolean') {
          throw new TypeError(`${key} must be a boolean`);
        }
      },
    },
    features: {
      devInteractions: { enabled: true },
      registration: config.registration_token
        ? { enabled: true, initialAccessToken: config.registration_token }
        : { enabled: false },
      // Tests read the provider's idea of the user, and may revoke what it issued.
      userinfo: { enabled: true },
      revocation: { enabled: true },
    },
    // Clients with skip_consent get no consent screen: the grant covers whatever they ask for.
    async loadExistingGrant(ctx) {
      const grantId = ctx.oidc.result?.consent?.grantId
        || ctx.oidc.session.grantIdFor(ctx.oidc.client.clientId);
      if (grantId) return ctx.oidc.provider.Grant.find(grantId);
      if (ctx.oidc.client.skipConsent !== true) return undefined;
      const grant = new ctx.oidc.provider.Grant({
        clientId: ctx.oidc.client.clientId,
        accountId: ctx.oidc.session.accountId,
      });
      grant.addOIDCScope([...ctx.oidc.requestParamOIDCScopes].join(' '));
      grant.addOIDCClaims([...ctx.oidc.requestParamClaims]);
      await grant.save();
      return grant;
    },
  };
}

const server = createServer();
server.listen(config.port ?? 0, config.host ?? '127.0.0.1', async () => {
  const { address, port } = server.address();
  const issuer = `http://${address}:${port}`;
  const provider = new Provider(issuer, configuration());

  // The development login form accepts any password: check it against the account here,
  // before oidc-provider sees the form (it then reads the parsed body from ctx.request.body).
  provider.use(async (ctx, next) => {
    if (ctx.method === 'POST' && /^\/interaction\/[^/]+$/.test(ctx.path)
        && ctx.is('application/x-www-form-urlencoded')) {
      const form = await readForm(ctx.req);
      ctx.request.body = form;
      if (form.prompt === 'login') {
        const account = accounts.get(form.login);
        const passwordOk = account && (account.password === undefined
          || account.password === form.password);
        if (!passwordOk) {
          console.error(`sign-in refused for ${JSON.stringify(form.login)}`);
          ctx.status = 303;
          ctx.redirect(ctx.path);
          return;
        }
      }
    }
    await next();
  });

  // oidc-provider checks a client's metadata when it first looks the client up: do that now,
  // so a test's bad client fails the start with the reason, not a later sign-in.
  for (const { client_id: clientId } of config.clients ?? []) {
    try {
      await provider.Client.find(clientId);
    } catch (error) {
      console.error(`invalid client ${JSON.stringify(clientId)}: ${error.error_description ?? error.message}`);
      process.exit(1);
    }
  }

  server.on('request', provider.callback());
  process.stdout.write(`${JSON.stringify({ issuer, port })}\n`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => {
    server.closeAllConnections();
    server.close(() => process.exit(0));
  });
}
