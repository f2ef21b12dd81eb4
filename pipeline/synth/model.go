package synth

import (
	"math"

	"github.com/referee-project/referee/pipeline/signal"
)

// The fencers live in a side view measured in metres: x along the strip
// from its left end, y up from the floor. Only the proportions matter; they
// are those of an adult in en garde on a strip shortened to stripM so that
// the figures stay large in the frame.
const (
	stripM = 7.0

	stepS        = 0.45 // duration of one advance or retreat step
	recoverS     = 0.30 // how long arm and legs take to come back when stepping
	hipHeight    = 0.80 // en garde; a full lunge drops it by lungeDrop
	lungeDrop    = 0.18
	torsoLen     = 0.55
	torsoHalf    = 0.15 // half the torso's depth seen from the side
	thighLen     = 0.47
	shinLen      = 0.47
	stanceHalf   = 0.40 // each foot's distance from the hips in en garde
	bladeLen     = 0.90
	guardAngle   = 28 * math.Pi / 180 // blade raised in en garde
	extendLunge  = 0.45               // fraction of a lunge by which the arm is straight
	lungeLagFrac = 0.20               // fraction of a lunge before the body moves
)

// pose is a fencer's state along the script at one instant.
type pose struct {
	hip   float64 // hips' position, fraction of the strip
	lunge float64 // 0 en garde .. 1 full lunge
	arm   float64 // 0 bent .. 1 extended
	// phase is the progress through the current step (0..1) and stepping
	// says whether a step is under way and which way the feet go.
	phase    float64
	stepping ActionKind
}

func smooth(x float64) float64 {
	x = clamp01(x)
	return x * x * (3 - 2*x)
}

// thrust eases in but ends at full speed, as a hit arrives: unlike smooth,
// the tip is still moving when a lunge or extension ends on its target.
func thrust(x float64) float64 {
	x = clamp01(x)
	return x * x * (2 - x)
}

func clamp01(x float64) float64 { return math.Max(0, math.Min(1, x)) }

// poseAt plays the script up to t for a fencer facing dir (+1 right, -1
// left), each action starting from the pose the previous one ended in.
func (sc Script) poseAt(t, dir float64) pose {
	p := pose{hip: sc.Start}
	for _, a := range sc.Actions {
		if t <= a.Start {
			break
		}
		p = p.through(a, t-a.Start, dir)
		if t < a.End {
			break
		}
	}
	return p
}

func (sc Script) positionAt(t, dir float64) float64 { return sc.poseAt(t, dir).hip }

// through returns the pose dt seconds into action a, starting from p.
func (p pose) through(a Action, dt, dir float64) pose {
	dur := a.End - a.Start
	dt = math.Min(dt, dur)
	q := dt / dur
	sign := dir
	if a.Kind == Retreat {
		sign = -dir
	}
	next := pose{hip: p.hip, lunge: p.lunge, arm: p.arm}
	switch a.Kind {
	case Advance, Retreat:
		k := math.Max(1, math.Round(dur/stepS))
		steps := q * k
		done := math.Min(math.Floor(steps), k-1)
		phase := steps - done
		next.hip += sign * a.Distance * (done + smooth(phase)) / k
		next.arm = math.Max(0, p.arm-dt/recoverS)
		next.lunge = math.Max(0, p.lunge-dt/recoverS)
		if q < 1 {
			next.phase, next.stepping = phase, a.Kind
		}
	case Lunge:
		body := thrust((q - lungeLagFrac) / (1 - lungeLagFrac))
		next.hip += sign * a.Distance * body
		next.lunge = p.lunge + (1-p.lunge)*body
		next.arm = p.arm + (1-p.arm)*smooth(q/extendLunge)
	case Extend:
		next.hip += sign * a.Distance * smooth(q)
		next.arm = p.arm + (1-p.arm)*thrust(q)
		if a.Distance > 0 && q < 1 {
			next.phase, next.stepping = q, Advance
		}
	}
	return next
}

type vec struct{ x, y float64 }

func (a vec) add(b vec) vec                 { return vec{a.x + b.x, a.y + b.y} }
func lerp(a, b vec, t float64) vec          { return vec{a.x + (b.x-a.x)*t, a.y + (b.y-a.y)*t} }
func lerpf(a, b float64, t float64) float64 { return a + (b-a)*t }

// body is a fencer's skeleton in metres at one instant.
type body struct {
	dir                     float64
	hip, shoulder, head     vec
	elbow, hand             vec // sword arm
	backElbow, backHand     vec
	frontKnee, frontFoot    vec
	backKnee, backFoot      vec
	rawTip, tip             vec // tip before and after stopping at the opponent's torso
	torsoMidX               float64
	targetTop, targetBottom float64
}

// targetEdge is the x of the torso's surface facing the opponent.
func (b body) targetEdge() float64 { return b.torsoMidX + b.dir*torsoHalf }

func skeleton(p pose, dir float64) body {
	b := body{dir: dir}
	x := p.hip * stripM
	b.hip = vec{x, hipHeight - lungeDrop*p.lunge}
	b.shoulder = vec{x + dir*(0.06+0.15*p.lunge), b.hip.y + torsoLen}
	b.torsoMidX = (b.hip.x + b.shoulder.x) / 2
	b.targetBottom, b.targetTop = b.hip.y, b.shoulder.y
	b.head = b.shoulder.add(vec{dir * 0.04, 0.24})

	e := p.arm
	b.elbow = lerp(b.shoulder.add(vec{dir * 0.14, -0.24}), b.shoulder.add(vec{dir * 0.33, -0.02}), e)
	b.hand = lerp(b.shoulder.add(vec{dir * 0.38, -0.22}), b.shoulder.add(vec{dir * 0.66, -0.04}), e)
	// The rear arm is held up behind and flung back straight in a lunge.
	b.backElbow = lerp(b.shoulder.add(vec{-dir * 0.20, 0.02}), b.shoulder.add(vec{-dir * 0.30, -0.02}), p.lunge)
	b.backHand = lerp(b.shoulder.add(vec{-dir * 0.22, 0.28}), b.shoulder.add(vec{-dir * 0.60, -0.06}), p.lunge)

	// Feet: the stance widens in a lunge (mostly the front foot) and
	// during a step; the foot that leads the step is lifted.
	spread := 0.10 * math.Sin(math.Pi*p.phase)
	lift := 0.07 * math.Sin(2*math.Pi*p.phase)
	frontLift, backLift := math.Max(0, lift), math.Max(0, -lift)
	if p.stepping == Retreat {
		frontLift, backLift = backLift, frontLift
	}
	b.frontFoot = vec{x + dir*(stanceHalf+0.15*p.lunge+spread), frontLift}
	b.backFoot = vec{x - dir*(stanceHalf+0.40*p.lunge+spread), backLift}
	b.frontKnee = knee(b.hip, b.frontFoot, dir)
	b.backKnee = knee(b.hip, b.backFoot, -dir)
	return b
}

// knee bends the leg from hip to foot towards bend (+1 right, -1 left);
// a leg too short for the distance is drawn straight.
func knee(hip, foot vec, bend float64) vec {
	dx, dy := foot.x-hip.x, foot.y-hip.y
	d := math.Hypot(dx, dy)
	mid := vec{(hip.x + foot.x) / 2, (hip.y + foot.y) / 2}
	if d >= thighLen+shinLen {
		return mid
	}
	h := math.Sqrt(thighLen*thighLen - d*d/4)
	nx, ny := -dy/d, dx/d
	if nx*bend < 0 {
		nx, ny = -nx, -ny
	}
	return vec{mid.x + nx*h, mid.y + ny*h}
}

// bodiesAt poses both fencers at t and points their blades: raised in en
// garde, at the opponent's chest when the arm is extended, lifted and
// brought down by a beat and knocked up when beaten, and stopped at the
// opponent's torso (as a real blade bends on a hit).
func (s Scenario) bodiesAt(t float64) (left, right body) {
	t = s.clamp(t)
	lp, rp := s.Left.poseAt(t, +1), s.Right.poseAt(t, -1)
	left, right = skeleton(lp, +1), skeleton(rp, -1)
	left.aim(right, lp.arm, s.bladeOffset(t, SideLeft))
	right.aim(left, rp.arm, s.bladeOffset(t, SideRight))
	return left, right
}

func (b *body) aim(opp body, ext, offset float64) {
	target := vec{opp.torsoMidX, opp.hip.y + 0.35}
	toward := math.Atan2(target.y-b.hand.y, math.Abs(target.x-b.hand.x))
	toward = math.Max(-0.45, math.Min(0.35, toward))
	a := lerpf(guardAngle, toward, ext) + offset
	b.rawTip = b.hand.add(vec{b.dir * bladeLen * math.Cos(a), bladeLen * math.Sin(a)})
	b.tip = b.rawTip
	if edge := opp.targetEdge(); b.reaches(opp) && b.dir*(b.hand.x-edge) < 0 {
		b.tip = lerp(b.hand, b.rawTip, (edge-b.hand.x)/(b.rawTip.x-b.hand.x))
	}
}

// reaches says whether the blade, unbent, would touch or pass into opp's
// torso: the tip is level with it and at or past its near surface.
func (b body) reaches(opp body) bool {
	return b.dir*(b.rawTip.x-opp.targetEdge()) >= 0 &&
		b.rawTip.y >= opp.targetBottom-0.05 && b.rawTip.y <= opp.targetTop+0.05
}

// bladeOffset is the extra blade angle (radians, up positive) that blade
// contacts give side at t: the beater lifts the blade and brings it down on
// the other's, which is knocked up and drifts back.
func (s Scenario) bladeOffset(t float64, side string) float64 {
	off := 0.0
	for _, ev := range s.Events {
		if ev.Kind != signal.EventBladeContact || ev.Side == "" {
			continue
		}
		d := t - ev.TimeS
		if ev.Side == side {
			switch {
			case d >= -0.25 && d < -0.10:
				off += 0.40 * smooth((d+0.25)/0.15)
			case d >= -0.10 && d < 0:
				off += 0.40 * (1 - smooth((d+0.10)/0.10))
			}
		} else if d >= 0 && d < 0.35 {
			off += 0.50 * (1 - d/0.35)
		}
	}
	return off
}
