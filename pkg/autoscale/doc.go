// Package autoscale holds a scale set's autoscale settings and the
// evaluator that turns them, the set's metrics and its persisted state into
// one Decision, after Azure autoscale: profiles, rules, cooldowns and
// flapping protection. It is pure: no I/O but the metrics Reader the caller
// passes (and the host's time zone database), no clock (the caller passes
// Now), no goroutines; the caller applies the decision and persists its
// State.
//
// It is meant to be explainable: every Decision, including "none", carries
// a one-line Reason with the numbers it saw ("rule cpu_percent>70 avg 5m saw
// 83.2 over 3 instances -> +1 (3->4)"), why its profile is active, and one
// RuleResult per rule with the rule in words, its value and whether it
// fired.
//
// # Settings
//
// A set's Settings hold profiles. Exactly one profile has no schedule: the
// default. A recurring profile (a 5-field cron schedule in an IANA time
// zone, repeating every week) is active from one of its starts until
// another recurring profile starts; a fixed-date profile is active in
// [start, end) of its time zone and overrides the recurring ones; the
// default is active when neither is (so once a recurring profile exists the
// default only applies in the week before its first start: add an
// "off-hours" recurring profile to come back to other capacities, as the
// Azure portal does).
//
// Each profile has a capacity range (min, max, default) and rules. A rule
// reads one metric of every instance over a time window ending at Now, cut
// into time grains: an instance's value in a grain is the mean of its
// samples there; the grain's value combines the instances that have one by
// the rule's statistic (avg, min, max, sum); the grains that have a value
// are combined by the time aggregation (avg, min, max, sum, last, count).
// The result is compared with the threshold; a rule that fires changes the
// capacity by a count, a percent of the current capacity (rounded up, at
// least 1) or to an exact value, in its direction.
//
// # Evaluation
//
// Evaluate decides in this order, the first that applies:
//
//  1. disabled or invalid settings: none.
//  2. capacity outside the active profile's [min, max]: clamp to it, even
//     within a cooldown.
//  3. within the cooldown: none.
//  4. any increase rule fired: scale out to the largest target, at most max
//     (none when that is not above the capacity).
//  5. every decrease rule fired: scale in to the largest target (the
//     smallest decrease), at least min, unless flapping protection finds
//     that an increase rule would fire at the new capacity.
//  6. no rule has any data and the capacity is below the default: scale out
//     to the default (Azure's behaviour when metrics are missing).
//  7. none.
//
// An action sets State.CooldownUntil to Now plus the cooldown of the rule
// that chose it (for a clamp or a move to the default: the longest cooldown
// of the profile's rules; never earlier than a cooldown already running).
//
// Flapping protection assumes a metric is load spread over the instances:
// before scaling in from N to M it estimates each increase rule's value as
// value*N/M, except for the sum statistic and the count aggregation, which
// stay as they are; a scale-in to 0 is refused when the default capacity is
// above 0, since no instance would report data and step 6 would scale out
// again.
package autoscale
