package rightofway

// defaultParams is Fit on the project's 113 refereed sabre phrases
// (shared/testdata/tracks), written out by hand from its JSON;
// TestDefaultParamsAreFitted keeps them so. The weights are in the order of
// features.
var defaultParams = Params{
	Model: Model{
		Lambda: 0.1,
		Scales: []float64{
			1.8952161950008892,
			1.691237238666918,
			1.3350581966283503,
			1.1748880199857337,
			2.2328869919862675,
			1.8299124043848551,
			1.315344814831382,
			0.9309493362512624,
			1.0129740382242785,
			0.21500416909025388,
			0.21805358625538823,
			0.9444014929542309,
			0.36871339331884656,
			3.1757807921916728,
			1.670601251236691,
			1.195851181870701,
			0.19246855782522693,
		},
		Weights: []float64{
			0.1785243581523083,
			0.1427809408638083,
			0.11928008801075267,
			0.09893059324766634,
			0.13525710211415767,
			0.07966161749353873,
			0.15919615448632635,
			0.2567944597569807,
			-0.1929058324345936,
			-0.05151639662720226,
			-0.4101255509833847,
			-0.1940053242645333,
			0.49013978280792464,
			0.33573821251192765,
			0.042154138189269934,
			-0.030573269752979654,
			0.06003422260459143,
		},
	},
	Override:       0.15,
	FirstLight:     true,
	KeepFirstLight: true,
	Confidence: map[string]float64{
		RuleArmExtended:      0.73,
		RuleFirstLight:       0.69,
		RuleBladeContact:     0.86,
		RuleEarlierAttack:    0.86,
		RuleNeitherAttacking: 0.5,
		RuleOneAttacking:     0.85,
		RuleSimultaneous:     0.5,
	},
}
