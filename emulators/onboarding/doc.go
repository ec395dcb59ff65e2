// Package onboarding holds the onboarding-day model (issue 15): an
// installer taps N devices through one gateway on EU868, devices joining
// as LoRaMac-node does, the air colliding (emulators/radio), hours of air
// on virtual time. The model and its checks are in the test files
// (onboarding_test.go says what is modelled and from which sources):
//
//	go test -run TestOnboarding -v ./emulators/onboarding
//	go test -run '^$' -bench OnboardingDay -benchtime 1x ./emulators/onboarding
//
// It lives among the emulators, not the suites, because it drives the air
// and the clock directly, which a suite may only reach through a rig.
package onboarding
