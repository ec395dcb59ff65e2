// Package onboarding is the onboarding-day model (issue 15): an installer
// taps N devices through one gateway on EU868, devices joining as
// LoRaMac-node does, the air colliding (emulators/radio), hours of air on
// virtual time. onboarding.go says what is modelled and from which
// sources. Run plays a day as a discrete-event loop (what a suite or a
// benchmark runs); RunOnAir plays it on the emulated air with a goroutine
// per device, in a testing/synctest bubble, and the tests show both give
// the same figures to the last count:
//
//	go test -run TestOnboarding -v ./emulators/onboarding
//	go test -run '^$' -bench OnboardingDay -benchtime 1x ./emulators/onboarding
//
// The fleet suite runs days through rigs.RunOnboardingDay and plots them in
// the HTML report.
package onboarding
