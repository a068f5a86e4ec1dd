#!/usr/bin/env node
// Makes a key-signed DSSE bundle with node's own crypto, independently of hermetic, as in
// docs/formats.md Appendix A: an in-toto statement about ARTIFACT, signed over the PAE.
// Used by engine/src/signing/interop_tests.rs to check that hermetic verifies it.
//
// usage: node make-bundle.js PRIVATE_KEY.pem ARTIFACT > bundle.json
'use strict';
const fs = require('fs');
const crypto = require('crypto');

const [keyPath, artifactPath] = process.argv.slice(2);
if (!keyPath || !artifactPath) {
  process.stderr.write('usage: node make-bundle.js PRIVATE_KEY.pem ARTIFACT > bundle.json\n');
  process.exit(2);
}
const key = crypto.createPrivateKey(fs.readFileSync(keyPath));
const artifact = fs.readFileSync(artifactPath);
const spki = crypto.createPublicKey(key).export({ type: 'spki', format: 'der' });
const statement = Buffer.from(JSON.stringify({
  _type: 'https://in-toto.io/Statement/v1',
  subject: [{ name: 'artifact', digest: { sha256: crypto.createHash('sha256').update(artifact).digest('hex') } }],
  predicateType: 'https://slsa.dev/provenance/v1',
  predicate: {
    buildDefinition: { buildType: 'https://example.invalid/hermetic/v1', externalParameters: {} },
    runDetails: { builder: { id: 'https://example.invalid/builder/v1' } },
  },
}));
const type = 'application/vnd.in-toto+json';
const pae = Buffer.concat([Buffer.from(`DSSEv1 ${Buffer.byteLength(type)} ${type} ${statement.length} `), statement]);
process.stdout.write(JSON.stringify({
  mediaType: 'application/vnd.dev.sigstore.bundle.v0.3+json',
  verificationMaterial: { publicKey: { hint: crypto.createHash('sha256').update(spki).digest('base64') } },
  dsseEnvelope: {
    payload: statement.toString('base64'),
    payloadType: type,
    signatures: [{ sig: crypto.sign('sha256', pae, key).toString('base64') }],
  },
}, null, 2) + '\n');
