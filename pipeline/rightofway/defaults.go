package rightofway

// defaultParams is Fit on the project's 113 refereed sabre phrases
// (shared/testdata/tracks); TestDefaultParamsAreFitted keeps them so.
var defaultParams = Params{
	EndWin: 0.14, HesWin: 0.4, ArmWin: 0.14,
	Confidence: map[string]float64{
		RuleArmExtended:      0.66,
		RuleBladeContact:     0.86,
		RuleEarlierAttack:    0.8,
		RuleHesitation:       0.85,
		RuleNeitherAttacking: 0.67,
		RuleOneAttacking:     0.85,
		RuleSimultaneous:     0.5,
	},
}
