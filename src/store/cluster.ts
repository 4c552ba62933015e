// What both adapters do with the ClusterStore methods: hand them to their coordination
// module (sqlite/cluster.ts, postgres/cluster.ts), which holds the SQL of its dialect.
import type {
  BucketPause,
  BudgetGrant,
  BudgetRequest,
  BudgetStatus,
  BudgetWindow,
  ClusterStore,
  LeaseRequest,
  LeaseResult,
  LeaseRow,
  ProcessBeat,
  ProcessRow,
  RouteBucket,
} from './port.js';

export abstract class ForwardsCluster implements ClusterStore {
  protected abstract readonly cluster: ClusterStore;

  clock(): Promise<number> {
    return this.cluster.clock();
  }
  heartbeat(beat: ProcessBeat): Promise<void> {
    return this.cluster.heartbeat(beat);
  }
  listProcesses(q: { now?: number; staleAfterMs: number }): Promise<ProcessRow[]> {
    return this.cluster.listProcesses(q);
  }
  forgetProcess(owner: string): Promise<boolean> {
    return this.cluster.forgetProcess(owner);
  }
  tryLease(req: LeaseRequest): Promise<LeaseResult> {
    return this.cluster.tryLease(req);
  }
  releaseLease(req: { name: string; owner: string }): Promise<boolean> {
    return this.cluster.releaseLease(req);
  }
  getLease(name: string): Promise<LeaseRow | undefined> {
    return this.cluster.getLease(name);
  }
  listLeases(): Promise<LeaseRow[]> {
    return this.cluster.listLeases();
  }
  takeBudget(req: BudgetRequest): Promise<BudgetGrant> {
    return this.cluster.takeBudget(req);
  }
  pauseBucket(pause: BucketPause): Promise<number> {
    return this.cluster.pauseBucket(pause);
  }
  budgetStatus(q?: { now?: number; windows?: Record<string, BudgetWindow[]> }): Promise<BudgetStatus> {
    return this.cluster.budgetStatus(q);
  }
  pruneBudget(q?: { now?: number }): Promise<number> {
    return this.cluster.pruneBudget(q);
  }
  setRouteBucket(fact: { route: string; bucket: string; limit: number; windowMs: number; now?: number }): Promise<void> {
    return this.cluster.setRouteBucket(fact);
  }
  listRouteBuckets(): Promise<RouteBucket[]> {
    return this.cluster.listRouteBuckets();
  }
}
