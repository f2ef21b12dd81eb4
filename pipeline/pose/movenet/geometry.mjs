// Geometry of referee-pose, apart from the models so that it can be
// tested on its own (geometry.test.mjs): choosing the fencers among the
// people found, placing crops, checking a pose is still the fencer, and
// writing poses for the tracks file. Poses are 17 COCO keypoints, each
// [x, y, score] in image pixels.

export const minKeypointScore = 0.2; // below this a keypoint is not placed
export const torsoM = 0.5; // shoulder-to-hip length of an adult, metres

// choosePair picks the two fencers among the people found: the pair
// standing on one level, of one size, the larger the better, facing each
// other (left looking right, right looking left). A lone person is left or
// right by the half of the frame they are in.
export function choosePair(people, width) {
  let best = null;
  let bestScore = 0;
  for (const a of people) {
    for (const b of people) {
      const ha = a.y1 - a.y0;
      const hb = b.y1 - b.y0;
      if (a === b || (a.x0 + a.x1) / 2 >= (b.x0 + b.x1) / 2 || ha <= 0 || hb <= 0) continue;
      const hm = (ha + hb) / 2;
      const s = Math.sqrt(ha * hb) * (Math.min(ha, hb) / Math.max(ha, hb)) *
        Math.exp(-Math.abs(a.y1 - b.y1) / (0.3 * hm)) *
        facing(a.kps, +1) * facing(b.kps, -1) * Math.sqrt(a.score * b.score);
      if (s > bestScore) {
        bestScore = s;
        best = { left: a, right: b };
      }
    }
  }
  if (best) return best;
  if (people.length === 0) return {};
  const p = people.reduce((x, y) => (y.score > x.score ? y : x));
  return (p.x0 + p.x1) / 2 < width / 2 ? { left: p } : { right: p };
}

// facing weighs a person by whether their nose is ahead of their hips in
// direction dir (+1 right, -1 left): fencers face each other, a referee
// or spectator faces the camera.
export function facing(kps, dir) {
  const nose = kps[0];
  const hip = hipOf(kps);
  if (!hip || nose[2] < minKeypointScore) return 1;
  const d = (nose[0] - hip[0]) * dir;
  return d > 0 ? 1.3 : 0.8;
}

// refind picks the fencer on side ('left' or 'right') among the people
// found in a frame of the given width: the pair choosePair makes, unless
// the fencer was seen before (last: {hip, height, k}, k the posed frame)
// and that choice is out of reach of where they were; then the person
// nearest to that place within reach, other than the pair's other fencer;
// null when nobody is. A person whose hips are at avoid ([x, y], where the
// other fencer was last seen) is never chosen.
export function refind(people, width, side, last, k, avoid = null) {
  const all = distinct(people);
  // Whoever stands where the other fencer was is the other fencer; they
  // still count in the pair, which places this one by them.
  const taken = (p) => avoid && distance(p, { hip: avoid }) < 0.2 * (p.y1 - p.y0);
  const pair = choosePair(all, width);
  const chosen = pair[side] && !taken(pair[side]) ? pair[side] : null;
  if (!last || (chosen && distance(chosen, last) <= reach(last, k))) return chosen;
  // The other fencer of a pair is not this one, however near.
  const other = pair.left && pair.right ? pair[side === 'left' ? 'right' : 'left'] : null;
  let best = null;
  for (const p of all) {
    if (p !== other && !taken(p) && distance(p, last) <= reach(last, k) && (!best || distance(p, last) < distance(best, last))) best = p;
  }
  return best;
}

// distinct drops the people MultiPose found twice (hips within a fifth of
// a body height of a better scored one): two detections of one person
// would otherwise make a perfect pair of fencers.
export function distinct(people) {
  const byScore = [...people].sort((a, b) => b.score - a.score);
  const kept = [];
  for (const p of byScore) {
    const hip = hipOf(p.kps) ?? [p.box.cx, p.box.cy];
    if (!kept.some((q) => distance(q, { hip }) < 0.2 * (q.y1 - q.y0))) kept.push(p);
  }
  return people.filter((p) => kept.includes(p));
}

// reach is how far from where they were last seen a fencer lost since
// then may be found at posed frame k: a little more each frame, and never
// more than two body heights, so that a lost fencer is not replaced by
// someone across the strip.
function reach(last, k) {
  return last.height * Math.min(0.6 + 0.2 * (k - last.k), 2);
}

function distance(p, last) {
  const hip = hipOf(p.kps) ?? [p.box.cx, p.box.cy];
  return Math.hypot(hip[0] - last.hip[0], hip[1] - last.hip[1]);
}

// jumped says whether a pose's hips are further from the last seen ones
// than a fencer can move: the crop then caught someone else.
export function jumped(kps, last, k) {
  const hip = hipOf(kps);
  if (!hip) return true;
  return Math.hypot(hip[0] - last.hip[0], hip[1] - last.hip[1]) > last.height * (0.4 + 0.2 * (k - last.k - 1));
}

// resize samples the w x h region at (x0, y0) of img (RGB) into an ow x oh
// RGB image, bilinearly, black outside img.
export function resize(img, x0, y0, w, h, ow, oh) {
  const out = new Int32Array(ow * oh * 3);
  const sx = w / ow;
  const sy = h / oh;
  const { data, width, height } = img;
  // The pixel at (x, y), channel c, or black outside the image.
  const at = (x, y, c) => (x < 0 || y < 0 || x >= width || y >= height ? 0 : data[(y * width + x) * 3 + c]);
  for (let j = 0; j < oh; j++) {
    const fy = y0 + (j + 0.5) * sy - 0.5;
    const iy = Math.floor(fy);
    const ty = fy - iy;
    if (iy < -1 || iy >= height) continue;
    for (let i = 0; i < ow; i++) {
      const fx = x0 + (i + 0.5) * sx - 0.5;
      const ix = Math.floor(fx);
      const tx = fx - ix;
      if (ix < -1 || ix >= width) continue;
      const o = (j * ow + i) * 3;
      for (let c = 0; c < 3; c++) {
        const top = at(ix, iy, c) * (1 - tx) + at(ix + 1, iy, c) * tx;
        const bot = at(ix, iy + 1, c) * (1 - tx) + at(ix + 1, iy + 1, c) * tx;
        out[o + c] = Math.round(top * (1 - ty) + bot * ty);
      }
    }
  }
  return out;
}

// cropOf places the next crop from a pose: centred on the body's
// keypoints, wide enough for them all with a margin for the next frame's
// motion, and at least two torsos tall so that a half-seen body still
// fits; null when too few keypoints are placed.
export function cropOf(kps) {
  const seen = kps.filter((k) => k[2] >= minKeypointScore);
  if (seen.length < 5) return null;
  const xs = seen.map((k) => k[0]);
  const ys = seen.map((k) => k[1]);
  const cx = (Math.min(...xs) + Math.max(...xs)) / 2;
  const cy = (Math.min(...ys) + Math.max(...ys)) / 2;
  const span = Math.max(Math.max(...xs) - Math.min(...xs), Math.max(...ys) - Math.min(...ys));
  const size = Math.max(span * 1.4, torsoOf(kps) * 4);
  return { cx, cy, size };
}

// bodyScore is the mean score of the shoulders, hips, knees and ankles:
// the keypoints a fencer's position rests on.
export function bodyScore(kps) {
  const idx = [5, 6, 11, 12, 13, 14, 15, 16];
  return idx.reduce((s, i) => s + kps[i][2], 0) / idx.length;
}

export function hipOf(kps) {
  const [l, r] = [kps[11], kps[12]];
  if (l[2] < minKeypointScore && r[2] < minKeypointScore) return null;
  if (l[2] < minKeypointScore) return r;
  if (r[2] < minKeypointScore) return l;
  return [(l[0] + r[0]) / 2, (l[1] + r[1]) / 2];
}

export function torsoOf(kps) {
  const hip = hipOf(kps);
  const sh = [kps[5], kps[6]].filter((k) => k[2] >= minKeypointScore);
  if (!hip || sh.length === 0) return 0;
  const sx = sh.reduce((s, k) => s + k[0], 0) / sh.length;
  const sy = sh.reduce((s, k) => s + k[1], 0) / sh.length;
  return Math.hypot(sx - hip[0], sy - hip[1]);
}

// heightOf is the body's height from its placed keypoints, at least two
// torsos.
export function heightOf(kps) {
  const ys = kps.filter((k) => k[2] >= minKeypointScore).map((k) => k[1]);
  return Math.max(Math.max(...ys) - Math.min(...ys), 2 * torsoOf(kps));
}

// duplicate says which fencer's pose to drop when both crops landed on
// the same body in a frame (hips within a fifth of a body height): the
// fencer whose last hips before (lastL, lastR, null when none) were
// further from it, or with no history the pose that scored lower; null
// when the poses are two bodies. The other fencer's crop had drifted onto
// this body, and is not guessed.
export function duplicate(a, b, lastL, lastR) {
  const ha = a && hipOf(a);
  const hb = b && hipOf(b);
  if (!ha || !hb || Math.hypot(ha[0] - hb[0], ha[1] - hb[1]) >= 0.2 * heightOf(a)) return null;
  if (lastL && lastR) {
    return Math.hypot(ha[0] - lastL[0], ha[1] - lastL[1]) > Math.hypot(hb[0] - lastR[0], hb[1] - lastR[1]) ? 'left' : 'right';
  }
  if (lastL || lastR) return lastL ? 'right' : 'left';
  return bodyScore(a) < bodyScore(b) ? 'left' : 'right';
}

// metresPerPixel is torsoM over the median torso length of the poses, 0
// when no torso was seen.
export function metresPerPixel(poses) {
  const t = poses.filter(Boolean).map(torsoOf).filter((v) => v > 0).sort((a, b) => a - b);
  return t.length ? torsoM / t[Math.floor(t.length / 2)] : 0;
}

// encodePose writes a pose for the tracks file: keypoints scored too low
// to be placed, or placed outside the w x h frame (the crop reaches past
// its edge), are null.
export function encodePose(kps, w, h) {
  if (!kps) return null;
  return kps.map(([x, y, s]) => (s < minKeypointScore || x < 0 || y < 0 || x > w || y > h ? null : [round(x, 2), round(y, 2), round(s, 3)]));
}

export function round(v, d) {
  const p = 10 ** d;
  return Math.round(v * p) / p;
}
