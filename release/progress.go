package release

import "slices"

// Progress names the last sub-step of a promotion or a rollback that is done. It is kept in the record
// after each sub-step, so that a process taking the release over after a crash goes on from the next one:
// redoing an earlier sub-step would need what a later one removed (the canary), and undoing it would roll
// a promoted service back.
type Progress string

// The sub-steps of a promotion, in order.
const (
	// ProgressCanaryScaled: the canary has as many tasks as stable, and they are ready.
	ProgressCanaryScaled Progress = "canary-scaled"
	// ProgressOnCanary: all traffic is on the canary.
	ProgressOnCanary Progress = "traffic-on-canary"
	// ProgressStableUpdating: the stable service is being moved to the new image; from here on an
	// abort puts it back on its previous image.
	ProgressStableUpdating Progress = "stable-updating"
	// ProgressStableUpdated: the stable service runs the new image and is healthy.
	ProgressStableUpdated Progress = "stable-updated"
	// ProgressOnStable: all traffic is back on the stable service.
	ProgressOnStable Progress = "traffic-on-stable"
	// ProgressCanaryRemoved: the canary is drained and removed.
	ProgressCanaryRemoved Progress = "canary-removed"
)

// The sub-steps of a rollback to the warm standby, in order.
const (
	// ProgressOnStandby: all traffic is on the standby of the previous version.
	ProgressOnStandby Progress = "traffic-on-standby"
	// ProgressStableRollingBack: the stable service is being put back on its previous image.
	ProgressStableRollingBack Progress = "stable-rolling-back"
	// ProgressStableRolledBack: the stable service runs its previous image again and is healthy.
	ProgressStableRolledBack Progress = "stable-rolled-back"
	// ProgressBackOnStable: all traffic is back on the stable service.
	ProgressBackOnStable Progress = "traffic-back-on-stable"
	// ProgressStandbyRemoved: the standby is drained and removed.
	ProgressStandbyRemoved Progress = "standby-removed"
)

var (
	promotionSteps = []Progress{ProgressCanaryScaled, ProgressOnCanary, ProgressStableUpdating, ProgressStableUpdated, ProgressOnStable, ProgressCanaryRemoved}
	rollbackSteps  = []Progress{ProgressOnStandby, ProgressStableRollingBack, ProgressStableRolledBack, ProgressBackOnStable, ProgressStandbyRemoved}
)

// reached reports whether p is sub-step step or later of the same sequence. No progress reaches nothing.
func (p Progress) reached(step Progress) bool {
	for _, seq := range [][]Progress{promotionSteps, rollbackSteps} {
		if i := slices.Index(seq, step); i >= 0 {
			j := slices.Index(seq, p)
			return j >= i
		}
	}
	return false
}
