// The AuthZEN evaluation peer: a bare Node `http` server that decides with
// @cedar-policy/cedar-wasm over a policy store folder (the same `*.cedar`, `*.cedarschema`
// and `entities.json` the bridge loads), and answers `{"decision": true|false}`.
//
// The policies are parsed once at start (cedar-wasm's preparsed, stateful API), and the
// stored entities are checked against the schema once. Per request, as in the bridge, nothing
// is validated against the schema (with the preparsed schema named in every call, a decision
// costs about twice as much); the entities are handed over with the request's `properties`
// laid over the stored attributes of the subject and the resource. The request context is
// the Cedar context.
//
// Usage: node cedar_pdp.mjs PORT NAME=FOLDER [NAME=FOLDER ...]
// The store named `default` answers at /access/v1/evaluation, every store at
// /stores/NAME/access/v1/evaluation.
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:http';
import { join } from 'node:path';

import * as cedar from '@cedar-policy/cedar-wasm/nodejs';

const [port, ...storeArgs] = process.argv.slice(2);
if (!port || storeArgs.length === 0) {
  console.error('usage: node cedar_pdp.mjs PORT NAME=FOLDER [NAME=FOLDER ...]');
  process.exit(2);
}

function check(answer, what) {
  if (answer.type !== 'success') {
    throw new Error(`${what}: ${JSON.stringify(answer.errors)}`);
  }
}

function loadStore(name, folder) {
  const files = readdirSync(folder).sort();
  const policies = files
    .filter((file) => file.endsWith('.cedar'))
    .map((file) => readFileSync(join(folder, file), 'utf8'))
    .join('\n');
  const schemaFile = files.find((file) => file.endsWith('.cedarschema'));
  check(cedar.preparsePolicySet(name, { staticPolicies: policies }), `${name}: policies`);
  const entities = files.includes('entities.json')
    ? JSON.parse(readFileSync(join(folder, 'entities.json'), 'utf8'))
    : [];
  const schema = schemaFile ? readFileSync(join(folder, schemaFile), 'utf8') : null;
  check(cedar.checkParseEntities({ entities, schema }), `${name}: entities`);
  const byUid = new Map(entities.map((entity, index) => [key(entity.uid), index]));
  return { name, entities, byUid };
}

function key(uid) {
  return `${uid.type}\u0000${uid.id}`;
}

const stores = new Map();
for (const arg of storeArgs) {
  const at = arg.indexOf('=');
  const name = arg.slice(0, at);
  stores.set(name, loadStore(name, arg.slice(at + 1)));
}

// The store's entities, with `properties` laid over the entity they describe.
function entitiesFor(store, overlays) {
  let entities = store.entities;
  for (const { type, id, properties } of overlays) {
    if (!properties || Object.keys(properties).length === 0) continue;
    if (entities === store.entities) entities = [...store.entities];
    const uid = { type, id };
    const index = store.byUid.get(key(uid));
    if (index === undefined) {
      entities.push({ uid, attrs: properties, parents: [] });
    } else {
      const stored = store.entities[index];
      entities[index] = { uid, attrs: { ...stored.attrs, ...properties }, parents: stored.parents };
    }
  }
  return entities;
}

function decide(store, request) {
  const { subject, action, resource } = request;
  const answer = cedar.statefulIsAuthorized({
    principal: { type: subject.type, id: subject.id },
    action: { type: 'Action', id: action.name },
    resource: { type: resource.type, id: resource.id },
    context: request.context ?? {},
    preparsedPolicySetId: store.name,
    validateRequest: false,
    entities: entitiesFor(store, [subject, resource]),
  });
  check(answer, 'authorization');
  return answer.response.decision === 'allow';
}

function route(url) {
  if (url === '/access/v1/evaluation') return stores.get('default');
  const match = /^\/stores\/([^/]+)\/access\/v1\/evaluation$/.exec(url);
  return match ? stores.get(match[1]) : undefined;
}

function send(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
  });
  res.end(text);
}

const server = createServer((req, res) => {
  const store = req.method === 'POST' ? route(req.url) : undefined;
  if (!store) {
    req.resume();
    send(res, 404, { error: 'not found' });
    return;
  }
  const chunks = [];
  req.on('data', (chunk) => chunks.push(chunk));
  req.on('end', () => {
    let request;
    try {
      request = JSON.parse(Buffer.concat(chunks).toString('utf8'));
    } catch {
      send(res, 400, { error: 'the body is not JSON' });
      return;
    }
    if (!request?.subject?.type || !request?.action?.name || !request?.resource?.type) {
      send(res, 400, { error: 'subject, action and resource are required' });
      return;
    }
    try {
      send(res, 200, { decision: decide(store, request) });
    } catch (error) {
      send(res, 500, { error: String(error.message ?? error) });
    }
  });
});

server.listen(Number(port), '127.0.0.1');
