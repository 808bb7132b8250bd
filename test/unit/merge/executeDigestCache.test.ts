// Input hashing for the record: digests equal node:crypto's, on the hashing thread and inline, and the stat-keyed
// cache reuses a digest only for an unchanged file hashed well after its last modification.
import { test, after } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { readFileSync, utimesSync, writeFileSync, appendFileSync } from 'node:fs';
import { join } from 'node:path';
import { hashFilesInBackground } from '../../../src/core/merge/inputHashing';
import { DigestCache } from '../../../src/core/merge/digestCache';
import { tempFolder } from './executeFixtures';

const folder = tempFolder('awd-digest-');
after(folder.cleanup);

const sha = (f: string): string => createHash('sha256').update(readFileSync(f)).digest('hex');

void test('digests match node:crypto, inline and on the hashing thread', async () => {
  const small = join(folder.dir, 'small.bin');
  const large = join(folder.dir, 'large.bin');
  writeFileSync(small, 'hello');
  writeFileSync(large, Buffer.alloc(5 << 20, 7));
  assert.deepEqual(await hashFilesInBackground([small]).digests, { [small]: sha(small) });
  // Threshold 0: hashed on the thread whatever the size.
  assert.deepEqual(await hashFilesInBackground([large, small, large], undefined, 0).digests, { [large]: sha(large), [small]: sha(small) });
});

void test('the cache serves unchanged files and re-hashes changed or recently written ones', async () => {
  const file = join(folder.dir, 'model.bin');
  const cacheFile = join(folder.dir, 'cache', 'sha256.json');
  writeFileSync(file, 'version 1');
  const old = new Date(Date.now() - 60_000);
  utimesSync(file, old, old);
  const first = await hashFilesInBackground([file], new DigestCache(cacheFile)).digests;
  assert.equal(first[file], sha(file));
  // Same size and mtime, different bytes: a cache hit proves the digest came from the cache.
  writeFileSync(file, 'version 2');
  utimesSync(file, old, old);
  assert.equal(new DigestCache(cacheFile).lookup(file), first[file]);
  // A different size (or mtime) is a miss.
  appendFileSync(file, '!');
  utimesSync(file, old, old);
  assert.equal(new DigestCache(cacheFile).lookup(file), undefined);
  const again = await hashFilesInBackground([file], new DigestCache(cacheFile)).digests;
  assert.equal(again[file], sha(file));
  // A file modified just before it was hashed is not trusted (it could change again within the same mtime).
  const fresh = join(folder.dir, 'fresh.bin');
  writeFileSync(fresh, 'new');
  await hashFilesInBackground([fresh], new DigestCache(cacheFile)).digests;
  assert.equal(new DigestCache(cacheFile).lookup(fresh), undefined);
});
