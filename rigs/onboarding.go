package rigs

import "github.com/tap2join/tap2join/emulators/onboarding"

// The onboarding day (emulators/onboarding) as a suite reaches it: a site's
// N devices tapped at an installer's pace, joining through one gateway on
// the colliding air, hours of air played as a discrete-event loop. It needs
// no rig — no board, network server or socket is up — so a suite runs it
// beside its fleets; these names keep suites off the emulators' packages
// (the layering rule).
type (
	// OnboardingSpec is one day: devices, pace, firmware, link budgets.
	OnboardingSpec = onboarding.Spec
	// OnboardingFigures is what a day reports.
	OnboardingFigures = onboarding.Figures
	// NamedOnboardingDay is a day with its name.
	NamedOnboardingDay = onboarding.NamedDay
)

// The join behaviours the day models (onboarding.go says from which
// LoRaMac-node files).
const (
	// LoRaMacNode470 is LoRaMac-node v4.7.0 and later: a fixed join data
	// rate, time-credit duty cycle, retry after RX2.
	LoRaMacNode470 = onboarding.LMN470
	// LoRaMacNode440 is LoRaMac-node v4.4.0 and earlier: data rate by
	// trial, time-off back-off.
	LoRaMacNode440 = onboarding.LMN440
)

// OnboardingDay is the default day of n devices (seed: every draw): one tap
// every 10–30 s, devices as the firmware twin (LoRaMac-node 4.7.0 at DR0,
// JoinNonce 0 refused), −120…−80 dBm at the gateway.
func OnboardingDay(n int, seed uint64) OnboardingSpec { return onboarding.Day(n, seed) }

// OnboardingDays are the five days of n devices the fleet suite and the
// model's benchmark play (onboarding.Days).
func OnboardingDays(n int, seed uint64) []NamedOnboardingDay { return onboarding.Days(n, seed) }

// RunOnboardingDay plays a day (onboarding.Run) and returns its figures;
// a spec it cannot run is refused with a reason.
func RunOnboardingDay(s OnboardingSpec) (OnboardingFigures, error) {
	f, _, err := onboarding.Run(s)
	return f, err
}
