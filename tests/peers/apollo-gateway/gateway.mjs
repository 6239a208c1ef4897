// Apollo's own gateway in front of the datatrust nodes: a test peer, never shipped.
//
// The parity tests and bench/federation.py run it on the same subgraphs as our gateway, to
// show that the nodes are standard Federation 2 subgraphs and that our gateway answers
// with the same data. It composes by introspection (each node's `_service { sdl }`), calls
// the nodes over mutual TLS with the tool certificate from run.json, and forwards only the
// caller's own credentials, purpose and request ids, so every node decides and audits the
// caller, not this process.
//
//   node gateway.mjs --port PORT --ca CA --cert CERT --key KEY \
//     --subgraph council=URL --subgraph health=URL --subgraph social-care=URL
//
// Prints `ready http://127.0.0.1:PORT/graphql` on stdout once it can answer; exits non-zero
// with the reason on stderr when it cannot compose (Apollo's gateway gives up at start if a
// subgraph is down).

import { readFileSync } from "node:fs";
import { parseArgs } from "node:util";

import { ApolloGateway, IntrospectAndCompose, RemoteGraphQLDataSource } from "@apollo/gateway";
import { ApolloServer } from "@apollo/server";
import { startStandaloneServer } from "@apollo/server/standalone";
import { Agent, fetch } from "undici";

// The caller's headers each node needs: who asks, for what, and the ids its audit entry names.
const FORWARDED = ["purpose", "authorization", "x-request-id", "traceparent"];

function fail(message) {
  process.stderr.write(`apollo-gateway peer: ${message}\n`);
  process.exit(2);
}

function options() {
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        port: { type: "string" },
        ca: { type: "string" },
        cert: { type: "string" },
        key: { type: "string" },
        subgraph: { type: "string", multiple: true },
      },
      strict: true,
    }));
  } catch (error) {
    fail(error.message);
  }
  for (const name of ["port", "ca", "cert", "key", "subgraph"]) {
    if (values[name] === undefined) fail(`--${name} is required`);
  }
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 1 || port > 65535) {
    fail(`--port must be a port number, not '${values.port}'`);
  }
  const subgraphs = values.subgraph.map((pair) => {
    const at = pair.indexOf("=");
    if (at < 1 || at === pair.length - 1) fail(`--subgraph must be NAME=URL, not '${pair}'`);
    return { name: pair.slice(0, at), url: pair.slice(at + 1) };
  });
  const read = (flag) => {
    try {
      return readFileSync(values[flag]);
    } catch (error) {
      return fail(`--${flag} ${values[flag]}: ${error.message}`);
    }
  };
  return { port, subgraphs, tls: { ca: read("ca"), cert: read("cert"), key: read("key") } };
}

const { port, subgraphs, tls } = options();

// One pooled keep-alive client for every node, presenting the tool certificate (mutual TLS).
const agent = new Agent({ connect: { ca: tls.ca, cert: tls.cert, key: tls.key } });
const fetcher = (url, init) => fetch(url, { ...init, dispatcher: agent });

class ForwardingDataSource extends RemoteGraphQLDataSource {
  willSendRequest({ request, context }) {
    // Schema loading has no incoming request, hence no headers: nodes serve their SDL
    // without credentials.
    const incoming = context?.headers;
    if (!incoming) return;
    for (const name of FORWARDED) {
      const value = incoming.get(name);
      if (value !== undefined) request.http.headers.set(name, value);
    }
  }
}

const gateway = new ApolloGateway({
  supergraphSdl: new IntrospectAndCompose({ subgraphs }),
  buildService: ({ url }) => new ForwardingDataSource({ url, fetcher }),
});

const server = new ApolloServer({ gateway, includeStacktraceInErrorResponses: false });

try {
  const { url } = await startStandaloneServer(server, {
    listen: { host: "127.0.0.1", port },
    context: async ({ req }) => ({ headers: headerMap(req.headers) }),
  });
  process.stdout.write(`ready ${url}graphql\n`);
} catch (error) {
  fail(`cannot start: ${error.message}`);
}

// Node's IncomingMessage headers: lower-case names, values as strings or arrays.
function headerMap(headers) {
  const map = new Map();
  for (const [name, value] of Object.entries(headers)) {
    map.set(name, Array.isArray(value) ? value.join(", ") : value);
  }
  return map;
}

for (const signal of ["SIGINT", "SIGTERM"]) {
  process.on(signal, async () => {
    await server.stop();
    await agent.close();
    process.exit(0);
  });
}
