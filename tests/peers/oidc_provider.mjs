// An OpenID Connect provider on loopback for the sign-in tests: the npm package
// oidc-provider itself, with its development login and consent pages, so that a
// browser (or a test's HTTP client) signs in by typing an account's name.
//
// Usage: node tests/peers/oidc_provider.mjs CONFIG_JSON
//   {"port": 8123,
//    "client": {"client_id": "...", "client_secret": "...", "redirect_uri": "..."},
//    "accounts": {"alice": {"email": "alice@example.org", "groups": ["packager"]}}}
// It prints "listening <issuer>" on stdout once it accepts connections, and stops on
// SIGTERM or when its standard input closes (so it never outlives the test).

import { generateKeyPairSync, randomBytes } from 'node:crypto';
import Provider from 'oidc-provider';

const config = JSON.parse(process.argv[2] ?? process.env.OIDC_PEER_CONFIG ?? '{}');
const issuer = `http://127.0.0.1:${config.port}`;
const accounts = config.accounts ?? {};
// Signing keys of its own, new at every start (as after a key rotation).
const { privateKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
const signingKey = {
  ...privateKey.export({ format: 'jwk' }),
  kid: randomBytes(8).toString('hex'),
  use: 'sig',
  alg: 'RS256',
};

const provider = new Provider(issuer, {
  clients: [{
    client_id: config.client.client_id,
    client_secret: config.client.client_secret,
    redirect_uris: [config.client.redirect_uri],
    grant_types: ['authorization_code'],
    response_types: ['code'],
    token_endpoint_auth_method: 'client_secret_basic',
  }],
  // Confidential client or not, every authorization request needs PKCE (S256).
  pkce: { required: () => true },
  scopes: ['openid', 'profile', 'email'],
  claims: {
    openid: ['sub'],
    profile: ['preferred_username', 'name', 'groups'],
    email: ['email', 'email_verified'],
  },
  jwks: { keys: [signingKey] },
  cookies: { keys: [randomBytes(32).toString('base64url')] },
  features: { devInteractions: { enabled: true } },
  async findAccount(ctx, id) {
    const account = Object.hasOwn(accounts, id) ? accounts[id] : undefined;
    if (account === undefined) return undefined;
    return {
      accountId: id,
      async claims() {
        return {
          sub: id,
          preferred_username: account.preferred_username ?? id,
          name: account.name ?? id,
          groups: account.groups ?? [],
          email: account.email,
          email_verified: account.email !== undefined,
        };
      },
    };
  },
});

const server = provider.listen(config.port, '127.0.0.1', () => {
  process.stdout.write(`listening ${issuer}\n`);
});

function stop() {
  server.close();
  server.closeAllConnections?.();
  process.exit(0);
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
process.stdin.on('end', stop);
process.stdin.resume();
