// The token endpoint peer: node-oidc-provider 9 set up for what the bridge's token benchmark
// asks, and nothing else. A confidential client with client_secret_basic gets an ES256 JWT
// access token for one `customer_records` authorization_details entry through the client
// credentials grant, with or without a DPoP proof. No policy decision is made: that is the
// bridge's extra work. Everything is in memory (the provider's default adapter).
//
// Usage: node oidc_provider.mjs PORT CLIENT_ID CLIENT_SECRET RESOURCE
import { generateKeyPairSync, randomBytes } from 'node:crypto';

import Provider, { errors } from 'oidc-provider';

const [port, clientId, clientSecret, resource] = process.argv.slice(2);
if (!port || !clientId || !clientSecret || !resource) {
  console.error('usage: node oidc_provider.mjs PORT CLIENT_ID CLIENT_SECRET RESOURCE');
  process.exit(2);
}

const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
const signingKey = { ...privateKey.export({ format: 'jwk' }), alg: 'ES256', use: 'sig', kid: 'bench-es256' };

// The shape rules of profiles/customer_records.json, by hand.
const ACTIONS = new Set(['read', 'export']);
const LOCATION = /^https:\/\/crm\.example\.com\/customers\/[^/]+$/;
const MEMBERS = new Set(['type', 'actions', 'locations', 'identifier']);

function reject(message) {
  throw new errors.InvalidAuthorizationDetails(`customer_records: ${message}`);
}

function uniqueNonEmptyArray(value, name) {
  if (!Array.isArray(value) || value.length === 0) reject(`${name} must be a non-empty array`);
  if (new Set(value).size !== value.length) reject(`${name} must not repeat an item`);
}

function validateCustomerRecords(ctx, detail) {
  for (const member of Object.keys(detail)) {
    if (!MEMBERS.has(member)) reject(`unexpected member ${member}`);
  }
  uniqueNonEmptyArray(detail.actions, 'actions');
  for (const action of detail.actions) {
    if (!ACTIONS.has(action)) reject('actions must be read or export');
  }
  if (detail.locations !== undefined) {
    uniqueNonEmptyArray(detail.locations, 'locations');
    for (const location of detail.locations) {
      if (typeof location !== 'string' || !LOCATION.test(location)) {
        reject('a location must name one CRM customer record');
      }
    }
  }
  if (detail.identifier !== undefined && (typeof detail.identifier !== 'string' || !detail.identifier)) {
    reject('identifier must be a non-empty string');
  }
}

const provider = new Provider(`http://127.0.0.1:${port}`, {
  clients: [
    {
      client_id: clientId,
      client_secret: clientSecret,
      token_endpoint_auth_method: 'client_secret_basic',
      grant_types: ['client_credentials'],
      response_types: [],
      redirect_uris: [],
      authorization_details_types: ['customer_records'],
      // Its only key is ES256 (the default, RS256, would need an RSA key nobody uses).
      id_token_signed_response_alg: 'ES256',
    },
  ],
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('hex')] },
  // As long as the bridge's access tokens (`oauth.access_token_lifetime_seconds`).
  ttl: { ClientCredentials: 600 },
  features: {
    devInteractions: { enabled: false },
    clientCredentials: { enabled: true },
    dPoP: { enabled: true },
    resourceIndicators: {
      enabled: true,
      defaultResource: () => resource,
      useGrantedResource: () => true,
      getResourceServerInfo(ctx, indicator) {
        if (indicator !== resource) throw new errors.InvalidTarget();
        return {
          scope: '',
          audience: resource,
          accessTokenFormat: 'jwt',
          jwt: { sign: { alg: 'ES256' } },
        };
      },
    },
    richAuthorizationRequests: {
      enabled: true,
      types: { customer_records: { validate: validateCustomerRecords } },
      // Only the client credentials grant is enabled: the token gets what was asked for
      // (each entry was validated above), and nothing is inherited from a grant source.
      authorizationDetailsForGrantSource: () => undefined,
      authorizationDetailsForAccessToken(ctx, token, source) {
        if (source !== undefined) return undefined;
        return JSON.parse(ctx.oidc.params.authorization_details);
      },
      authorizationDetailsForIntrospection: (ctx, token) => token.rar,
    },
  },
});

provider.on('server_error', (ctx, error) => console.error('server_error', error));
provider.listen(Number(port), '127.0.0.1');
