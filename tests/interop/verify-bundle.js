#!/usr/bin/env node
// Independent offline verifier for key-signed Sigstore bundles (v0.3), built on sigstore-js
// as in docs/formats.md Appendix A. Used by engine/src/signing/interop_tests.rs.
//
// usage: node verify-bundle.js BUNDLE.json PUBLIC_KEY.pem ARTIFACT [PREDICATE_TYPE]
// Prints one JSON verdict on stdout: {"verified":true,...} (exit 0) or
// {"verified":false,"error":"..."} (exit 1); exit 2 on usage errors.
'use strict';
const fs = require('fs');
const crypto = require('crypto');
const { bundleFromJSON } = require('@sigstore/bundle');
const { Verifier, toSignedEntity, toTrustMaterial } = require('@sigstore/verify');

const IN_TOTO = 'application/vnd.in-toto+json';
const STATEMENT_V1 = 'https://in-toto.io/Statement/v1';

function verify(bundlePath, publicKeyPath, artifactPath, wantPredicateType) {
  const json = JSON.parse(fs.readFileSync(bundlePath));
  const publicKey = crypto.createPublicKey(fs.readFileSync(publicKeyPath));
  const artifact = fs.readFileSync(artifactPath);
  const sha256 = crypto.createHash('sha256').update(artifact).digest();

  // No CAs, logs or timestamp authorities: the only trust is the given key. The key finder
  // ignores the hint it is passed, because the hint is unauthenticated (pitfall 4).
  const root = { certificateAuthorities: [], timestampAuthorities: [], tlogs: [], ctlogs: [] };
  const trust = toTrustMaterial(root, () => ({ publicKey, validFor: () => true }));
  // timestampThreshold defaults to 1, which a tlog-less bundle can never meet (pitfall 1).
  const verifier = new Verifier(trust, { tlogThreshold: 0, ctlogThreshold: 0, timestampThreshold: 0 });

  const bundle = bundleFromJSON(json); // schema and media type validation
  if (bundle.verificationMaterial.content.$case !== 'publicKey') {
    throw new Error('expected a key-signed bundle');
  }
  // The signature: over the PAE for DSSE, over SHA-256 of the artifact for messageSignature.
  verifier.verify(toSignedEntity(bundle, artifact));

  // sigstore-js binds neither a DSSE payload to the artifact nor a messageDigest to it
  // (pitfalls 2 and 3): check both here.
  if (json.dsseEnvelope) {
    const payloadType = json.dsseEnvelope.payloadType;
    if (payloadType !== IN_TOTO) throw new Error(`payloadType ${payloadType}, expected ${IN_TOTO}`);
    const statement = JSON.parse(Buffer.from(json.dsseEnvelope.payload, 'base64'));
    if (statement._type !== STATEMENT_V1) throw new Error(`statement _type ${statement._type}`);
    if (wantPredicateType && statement.predicateType !== wantPredicateType) {
      throw new Error(`predicateType ${statement.predicateType}, expected ${wantPredicateType}`);
    }
    const hex = sha256.toString('hex');
    if (!(statement.subject || []).some((subject) => subject.digest && subject.digest.sha256 === hex)) {
      throw new Error('no subject matches the artifact sha256');
    }
    return { content: 'dsseEnvelope', payloadType, predicateType: statement.predicateType };
  }
  const digest = Buffer.from(json.messageSignature.messageDigest.digest, 'base64');
  if (!digest.equals(sha256)) throw new Error('messageDigest is not the artifact sha256');
  return { content: 'messageSignature' };
}

const args = process.argv.slice(2);
if (args.length < 3 || args.length > 4) {
  process.stderr.write('usage: node verify-bundle.js BUNDLE.json PUBLIC_KEY.pem ARTIFACT [PREDICATE_TYPE]\n');
  process.exit(2);
}
try {
  const details = verify(...args);
  process.stdout.write(JSON.stringify({ verified: true, ...details }) + '\n');
} catch (error) {
  process.stdout.write(JSON.stringify({ verified: false, error: String(error && error.message || error) }) + '\n');
  process.exit(1);
}
