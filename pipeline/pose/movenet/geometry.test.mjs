// Tests of referee-pose's geometry (node --test): no model, poses drawn
// by hand.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  choosePair, cropOf, distinct, duplicate, encodePose, jumped, metresPerPixel, refind, resize,
} from './geometry.mjs';

// person returns a MultiPose detection of a standing person h pixels tall
// whose feet are at (cx, foot), looking right (dir +1), left (-1) or at
// the camera (0).
function person(cx, foot, h, dir, score = 0.9) {
  const at = (dx, up) => [cx + dx * h, foot - up * h, score];
  const kps = [
    at(0.08 * dir, 0.93), // nose
    at(0.05 * dir - 0.03, 0.95), at(0.05 * dir + 0.03, 0.95), // eyes
    at(-0.04, 0.94), at(0.04, 0.94), // ears
    at(-0.1, 0.8), at(0.1, 0.8), // shoulders
    at(-0.12 + 0.1 * dir, 0.65), at(0.12 + 0.1 * dir, 0.65), // elbows
    at(-0.1 + 0.2 * dir, 0.55), at(0.1 + 0.2 * dir, 0.55), // wrists
    at(-0.07, 0.5), at(0.07, 0.5), // hips
    at(-0.1, 0.25), at(0.1, 0.25), // knees
    at(-0.12, 0), at(0.12, 0), // ankles
  ];
  return { kps, score, box: { cx, cy: foot - h / 2, size: 1.25 * h }, x0: cx - 0.2 * h, x1: cx + 0.2 * h, y0: foot - h, y1: foot };
}

test('the fencers are chosen over the referee between them', () => {
  const left = person(400, 600, 300, +1);
  const right = person(880, 600, 300, -1);
  const referee = person(640, 520, 220, 0);
  const pair = choosePair([referee, right, left], 1280);
  assert.equal(pair.left, left);
  assert.equal(pair.right, right);
});

test('the fencers are chosen over a larger spectator in the foreground', () => {
  const left = person(500, 600, 300, +1);
  const right = person(800, 600, 300, -1);
  const spectator = person(120, 700, 450, +1);
  const pair = choosePair([spectator, left, right], 1280);
  assert.equal(pair.left, left);
  assert.equal(pair.right, right);
});

test('two people facing each other win over two walking the same way', () => {
  const left = person(300, 600, 280, +1);
  const right = person(600, 600, 280, -1);
  const walkers = [person(800, 600, 300, +1), person(1000, 600, 300, +1)];
  const pair = choosePair([...walkers, right, left], 1280);
  assert.equal(pair.left, left);
  assert.equal(pair.right, right);
});

test('a lone person is left or right by the half of the frame', () => {
  const p = person(900, 600, 300, -1);
  assert.deepEqual(choosePair([p], 1280), { right: p });
  const q = person(200, 600, 300, +1);
  assert.deepEqual(choosePair([q], 1280), { left: q });
  assert.deepEqual(choosePair([], 1280), {});
});

test('a lost fencer is found again only within reach of where they were', () => {
  const left = person(400, 600, 280, +1);
  const right = person(880, 600, 280, -1);
  const stranger = person(1200, 600, 280, -1);
  const last = { hip: [400, 460], height: 280, k: 10 };
  // The pair's left fencer, where the left fencer was.
  assert.equal(refind([right, left], 1280, 'left', last, 11), left);
  // Alone in the right half, the pair would call him right; he is near
  // where the left fencer was, so he is the left fencer.
  const moved = person(660, 600, 280, +1);
  assert.equal(refind([moved], 1280, 'left', last, 20), moved);
  // Gone for one frame: 480 px is out of reach; after ten frames it is not.
  assert.equal(refind([right], 1280, 'left', last, 11), null);
  assert.equal(refind([right], 1280, 'left', last, 20), right);
  // Never across the strip, however long the fencer was lost.
  assert.equal(refind([stranger], 1280, 'left', last, 200), null);
  // Nor the other fencer of a pair, however near: three frames lost, the
  // reach is 336 px; the pair is a left fencer 380 px away and a right
  // one 320 px away.
  const farLeft = person(20, 600, 280, +1);
  const nearRight = person(720, 600, 280, -1);
  assert.equal(refind([farLeft, nearRight], 1280, 'left', last, 13), null);
  assert.equal(refind([farLeft, nearRight], 1280, 'left', last, 14), farLeft);
  // Nor whoever stands where the other fencer was, though the pair
  // still places this one by them.
  assert.equal(refind([right, left], 1280, 'right', null, 0, [880, 460]), null);
  assert.equal(refind([right, left], 1280, 'left', null, 0, [880, 460]), left);
  // Not seen yet: the pair decides.
  assert.equal(refind([right, left], 1280, 'right', null, 0), right);
});

test('a pose whose hips moved further than a fencer can is another body', () => {
  const last = { hip: [400, 450], height: 300, k: 5 };
  assert.equal(jumped(person(450, 600, 300, +1).kps, last, 6), false);
  assert.equal(jumped(person(550, 600, 300, +1).kps, last, 6), true);
  assert.equal(jumped(person(550, 600, 300, +1).kps, last, 8), false);
});

test('the crop holds the whole body with a margin', () => {
  const p = person(400, 600, 300, +1);
  const c = cropOf(p.kps);
  for (const [x, y] of p.kps) {
    assert.ok(Math.abs(x - c.cx) < c.size / 2 && Math.abs(y - c.cy) < c.size / 2, `keypoint (${x}, ${y}) outside crop ${JSON.stringify(c)}`);
  }
  assert.ok(c.size >= 1.4 * 300 * 0.95);
  assert.equal(cropOf(person(400, 600, 300, +1, 0.1).kps), null);
});

test('resize samples bilinearly and pads black outside the image', () => {
  // A 2x1 image: a red pixel and a blue one.
  const img = { data: new Uint8Array([255, 0, 0, 0, 0, 255]), width: 2, height: 1 };
  assert.deepEqual([...resize(img, 0, 0, 2, 1, 2, 1)], [255, 0, 0, 0, 0, 255]);
  // The region right of the image is black; its first column blends in.
  assert.deepEqual([...resize(img, 2, 0, 2, 1, 2, 1)], [0, 0, 0, 0, 0, 0]);
  const mid = resize(img, 0, 0, 2, 1, 1, 1);
  assert.deepEqual([...mid], [128, 0, 128]);
});

test('keypoints scored too low or outside the frame are null in the tracks', () => {
  const kps = person(400, 600, 300, +1).kps;
  kps[0] = [400, -3, 0.9];
  kps[1] = [410, 300, 0.1];
  const out = encodePose(kps, 1280, 720);
  assert.equal(out[0], null);
  assert.equal(out[1], null);
  assert.deepEqual(out[11], [379, 450, 0.9]);
  assert.equal(encodePose(null, 1280, 720), null);
});

test('two crops on one body: the fencer whose track led there keeps it', () => {
  const a = person(400, 600, 300, +1, 0.5).kps;
  const b = person(405, 600, 300, +1, 0.8).kps;
  const c = person(700, 600, 300, -1, 0.8).kps;
  // Two bodies: nobody is dropped.
  assert.equal(duplicate(a, c, null, null), null);
  assert.equal(duplicate(a, null, null, null), null);
  // No track yet: the better scored pose stays.
  assert.equal(duplicate(a, b, null, null), 'left');
  // The right fencer's crop drifted from x 550 onto the left fencer at
  // 400: the right one goes, though it scored higher.
  assert.equal(duplicate(a, b, [400, 450], [550, 450]), 'right');
  // Only the left fencer has a track, and it led there.
  assert.equal(duplicate(a, b, [400, 450], null), 'right');
});

test('a person MultiPose found twice is one person', () => {
  const once = person(400, 600, 300, +1, 0.6);
  const twice = person(410, 605, 290, +1, 0.4);
  const other = person(800, 600, 300, -1, 0.5);
  assert.deepEqual(distinct([twice, other, once]), [other, once]);
  // Twice found, the same man would be a perfect pair by himself.
  assert.equal(refind([once, twice], 1280, 'right', null, 0), null);
});

test('the scale makes a torso half a metre', () => {
  // Shoulders at 0.8 h, hips at 0.5 h: a 0.3 h torso.
  const poses = [person(400, 600, 300, +1).kps, null, person(800, 600, 300, -1).kps];
  assert.ok(Math.abs(metresPerPixel(poses) - 0.5 / 90) < 1e-9);
  assert.equal(metresPerPixel([null]), 0);
});
