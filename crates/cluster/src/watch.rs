//! The scheduler's watch over running jobs, for two ways Ballista 55 can leave a job after
//! losing an executor, so its client never waits forever:
//!
//! * **Starved**: a stage still running on the surviving executor is rolled back when the lost
//!   executor's output it read is gone; its tasks then report to a stage that no longer knows
//!   them, and the task slots they held are never given back. The surviving executor looks
//!   busy for ever and the stages re-run for the lost output wait for a slot. The watch sees a
//!   job with tasks waiting while no task of any job runs, for [`STALL_CHECKS`] checks in a
//!   row: it gives every live executor back its slots and asks the scheduler to schedule.
//! * **Stalled**: no stage has a task waiting or running and none is ready, yet the job has not
//!   finished, or a starved job stays starved after its executors got their slots back. The
//!   watch cancels the job; the client runs a query cancelled so once more (see
//!   [`retryable`]).

use std::collections::{HashMap, HashSet};
use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use ballista_core::JobId;
use ballista_core::serde::protobuf::UpdateTaskStatusParams;
use ballista_core::serde::protobuf::scheduler_grpc_server::SchedulerGrpc;
use ballista_scheduler::cluster::ClusterState;
use ballista_scheduler::scheduler_server::SchedulerServer;
use ballista_scheduler::state::execution_stage::ExecutionStage;
use datafusion_proto::logical_plan::AsLogicalPlan;
use datafusion_proto::physical_plan::AsExecutionPlan;

/// How often the scheduler looks at its running jobs.
pub const STALL_CHECK: Duration = Duration::from_secs(2);

/// Checks in a row a job must be seen stalled before it is cancelled (so a job between two
/// stages, or whose lost executor's tasks are being reset, is not taken for stalled).
pub const STALL_CHECKS: u32 = 5;

/// What one stage of a job can do next, as far as stalls are concerned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StageState {
    /// Waiting for the stages whose output it reads.
    Waiting,
    /// Its inputs are ready: the scheduler starts it next.
    Ready,
    /// Started: tasks still to schedule and tasks running now.
    Running {
        pending: usize,
        running: usize,
    },
    Succeeded,
    Failed,
}

impl StageState {
    fn of(stage: &ExecutionStage) -> Self {
        match stage {
            ExecutionStage::UnResolved(_) => StageState::Waiting,
            ExecutionStage::Resolved(_) => StageState::Ready,
            ExecutionStage::Running(s) => StageState::Running {
                pending: s.available_tasks(),
                running: s.running_tasks().len(),
            },
            ExecutionStage::Successful(_) => StageState::Succeeded,
            ExecutionStage::Failed(_) => StageState::Failed,
        }
    }
}

/// Where a running job stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Progress {
    /// A task runs, one waits for a slot while others run, or a stage is about to start.
    Moving,
    /// Tasks wait for a slot while no task of any job runs.
    Starved,
    /// Nothing waits, runs or is ready, and the job has not finished.
    Stalled,
}

/// Where a job whose stages are in `stages` stands; `others_run` when a task of another job
/// runs now (then a task waiting for a slot is only queued behind it).
pub fn progress(stages: &[StageState], others_run: bool) -> Progress {
    let (mut pending, mut running, mut ready) = (0, 0, false);
    for s in stages {
        match s {
            StageState::Ready => ready = true,
            StageState::Running {
                pending: p,
                running: r,
            } => {
                pending += p;
                running += r;
            }
            _ => {}
        }
    }
    let finished = stages
        .iter()
        .all(|s| matches!(s, StageState::Succeeded | StageState::Failed));
    if finished || ready || running > 0 {
        Progress::Moving
    } else if pending > 0 {
        if others_run {
            Progress::Moving
        } else {
            Progress::Starved
        }
    } else {
        Progress::Stalled
    }
}

/// The stages of a job, for the scheduler's log.
fn describe(stages: &[(usize, StageState)]) -> String {
    let mut out = String::new();
    for (id, s) in stages {
        let _ = write!(out, " stage {id}: {s:?};");
    }
    out
}

/// Watch `scheduler`'s running jobs until the process ends: give back the task slots a
/// starved job's executors lost, and cancel a job that cannot progress. `cluster` is the
/// scheduler's cluster state (where executors' free slots are counted).
pub async fn watch_jobs<T, U>(scheduler: SchedulerServer<T, U>, cluster: Arc<dyn ClusterState>)
where
    T: 'static + AsLogicalPlan,
    U: 'static + AsExecutionPlan,
{
    let mut seen: HashMap<JobId, u32> = HashMap::new();
    let mut refunded: HashSet<JobId> = HashSet::new();
    let mut tick = tokio::time::interval(STALL_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let jobs = scheduler.state.task_manager.get_running_job_cache();
        let mut all = Vec::with_capacity(jobs.len());
        for (job_id, info) in jobs.iter() {
            let graph = info.execution_graph.read().await;
            let mut v: Vec<_> = graph
                .stages()
                .iter()
                .map(|(id, s)| (*id, StageState::of(s)))
                .collect();
            v.sort_by_key(|(id, _)| *id);
            all.push((job_id.clone(), v));
        }
        let running = |stages: &[(usize, StageState)]| {
            stages
                .iter()
                .any(|(_, s)| matches!(s, StageState::Running { running, .. } if *running > 0))
        };
        let mut still = HashMap::new();
        for (job_id, stages) in &all {
            let others_run = all.iter().any(|(other, st)| other != job_id && running(st));
            let states: Vec<StageState> = stages.iter().map(|(_, s)| *s).collect();
            let verdict = progress(&states, others_run);
            if verdict == Progress::Moving {
                continue;
            }
            let n = seen.get(job_id).copied().unwrap_or(0) + 1;
            if n < STALL_CHECKS {
                still.insert(job_id.clone(), n);
                continue;
            }
            let secs = STALL_CHECK.as_secs() * u64::from(STALL_CHECKS);
            if verdict == Progress::Starved && refunded.insert(job_id.clone()) {
                tracing::warn!(
                    "job {job_id} has tasks waiting while no task runs, for {secs} s (Ballista \
                     keeps the slots of tasks whose stage it rolled back after losing an \
                     executor): giving every executor its task slots back;{}",
                    describe(stages)
                );
                give_slots_back(&scheduler, &cluster).await;
                continue;
            }
            tracing::warn!(
                "job {job_id} cannot progress ({}, for {secs} s; Ballista can leave a job so \
                 after losing an executor): cancelling it so its client does not wait for \
                 ever;{}",
                if verdict == Progress::Starved {
                    "tasks wait for slots no executor frees"
                } else {
                    "no task to schedule or running, no stage ready"
                },
                describe(stages)
            );
            if let Err(e) = scheduler.cancel_job(job_id.clone()).await {
                tracing::error!("cancelling stalled job {job_id} failed: {e}");
            }
        }
        refunded.retain(|j| jobs.contains_key(j));
        seen = still;
    }
}

/// Give every registered executor its task slots back and have the scheduler offer them.
async fn give_slots_back<T, U>(scheduler: &SchedulerServer<T, U>, cluster: &Arc<dyn ClusterState>)
where
    T: 'static + AsLogicalPlan,
    U: 'static + AsExecutionPlan,
{
    let executors = cluster.registered_executor_metadata().await;
    let slots = executors
        .iter()
        .map(|e| (e.id.clone(), e.specification.vcores))
        .collect();
    if let Err(e) = cluster.unbind_tasks(slots).await {
        tracing::error!("giving executors their task slots back failed: {e}");
        return;
    }
    // An empty status report makes the scheduler offer free slots to waiting tasks.
    for e in executors {
        let report = UpdateTaskStatusParams {
            executor_id: e.id.clone(),
            task_status: Vec::new(),
        };
        if let Err(err) =
            SchedulerGrpc::update_task_status(scheduler, tonic::Request::new(report)).await
        {
            tracing::error!(
                "asking the scheduler to offer {}'s slots failed: {err}",
                e.id
            );
        }
    }
}

/// Whether a failed cluster query may be run again as it is: the cluster lost its work (the
/// scheduler cancelled it as stalled, or an executor refused a stage that would read one
/// task's output twice after an executor was lost). Nothing of its result was returned.
pub fn retryable(message: &str) -> bool {
    message.contains("failed: Cancelled") || message.contains("rejected by executor")
}

#[cfg(test)]
mod tests {
    use super::StageState::*;
    use super::*;

    fn run(pending: usize, running: usize) -> StageState {
        Running { pending, running }
    }

    #[test]
    fn a_job_with_nothing_to_run_and_not_finished_is_stalled() {
        // The map stage succeeded again, the stage reading it was rolled back, nothing starts.
        assert_eq!(
            progress(&[Succeeded, Waiting, Waiting], false),
            Progress::Stalled
        );
        // A started stage whose every task was reset and none will be scheduled.
        assert_eq!(
            progress(&[Succeeded, run(0, 0), Waiting], true),
            Progress::Stalled
        );
    }

    #[test]
    fn tasks_waiting_while_nothing_runs_anywhere_are_starved() {
        // The hang after a lost executor: stages re-run for the lost output wait for slots
        // the rolled-back stage's tasks never gave back.
        let lost = [run(2, 0), run(5, 0), run(1, 0), Waiting, Waiting];
        assert_eq!(progress(&lost, false), Progress::Starved);
        // Behind another job's running tasks they are only queued.
        assert_eq!(progress(&lost, true), Progress::Moving);
    }

    #[test]
    fn a_job_that_moves_or_ended_is_not_stalled() {
        assert_eq!(
            progress(&[Succeeded, Ready, Waiting], false),
            Progress::Moving
        );
        assert_eq!(progress(&[run(3, 1), Waiting], false), Progress::Moving);
        assert_eq!(progress(&[Succeeded, run(0, 1)], false), Progress::Moving);
        assert_eq!(progress(&[Succeeded, Succeeded], false), Progress::Moving);
        assert_eq!(progress(&[Succeeded, Failed], false), Progress::Moving);
    }

    #[test]
    fn only_lost_work_is_run_again() {
        assert!(retryable("Execution error: Job Ab3x failed: Cancelled"));
        assert!(retryable(
            "Job x failed: Task 1 in Stage 2 failed: rejected by executor e1"
        ));
        assert!(!retryable("Job x failed: Arrow error: divide by zero"));
        assert!(!retryable("Schema error: No field named eventname"));
    }
}
