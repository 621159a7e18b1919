// A real OpenID provider (node-oidc-provider) for the linking tests, on a free loopback port.
//
// Reads its setup as JSON from OIDC_PEER_CONFIG: {"path": "/" | "/oidc", "client": {...}}.
// Prints one line of JSON, {"issuer": ...}, once it listens; the issuer is
// http://127.0.0.1:<port><path>, so "/" gives an issuer with a trailing slash.
// Sign-in and consent are the provider's own development pages: any login is accepted and
// becomes the `sub` claim.
import http from 'node:http';

import Provider from 'oidc-provider';

const config = JSON.parse(process.env.OIDC_PEER_CONFIG);
const server = http.createServer();

server.listen(0, '127.0.0.1', () => {
  const { port } = server.address();
  const issuer = `http://127.0.0.1:${port}${config.path}`;
  const provider = new Provider(issuer, {
    clients: [
      {
        client_id: config.client.client_id,
        client_secret: config.client.client_secret,
        redirect_uris: config.client.redirect_uris,
        grant_types: ['authorization_code'],
        response_types: ['code'],
        token_endpoint_auth_method: 'client_secret_basic',
      },
    ],
    cookies: { keys: ['bankside-tests-only-cookie-key'] },
    findAccount: async (ctx, id) => ({ accountId: id, claims: async () => ({ sub: id }) }),
  });
  const handle = provider.callback();
  const prefix = new URL(issuer).pathname.replace(/\/$/, '');
  server.on('request', (req, res) => {
    if (prefix) {
      if (!req.url.startsWith(`${prefix}/`)) {
        res.statusCode = 404;
        res.end();
        return;
      }
      req.originalUrl = req.url;
      req.url = req.url.slice(prefix.length);
    }
    handle(req, res);
  });
  process.stdout.write(`${JSON.stringify({ issuer })}\n`);
});

process.on('SIGTERM', () => server.close(() => process.exit(0)));
