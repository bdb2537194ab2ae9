//! The gRPC services over a [`Coordinator`]: `Jobs` for users and `Work` for
//! workers, behind one bearer-token check, message size limits and optional
//! TLS (rustls).

use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures::Stream;
use headscan_proto::pb::jobs_server::{Jobs, JobsServer};
use headscan_proto::pb::work_server::{Work, WorkServer};
use headscan_proto::pb::{
    CancelJobRequest, CancelJobResponse, CompleteTaskRequest, CompleteTaskResponse, FailTaskRequest,
    FailTaskResponse, HeartbeatRequest, HeartbeatResponse, JobState, JobStatus, JobStatusRequest,
    LeaseTaskRequest, LeaseTaskResponse, ListJobsRequest, ListJobsResponse, RegisterWorkerRequest,
    RegisterWorkerResponse, ResultsRequest, ResultsResponse, SubmitJobRequest, SubmitJobResponse,
};
use tonic::{Request, Response, Status};

use crate::server::{Coordinator, CoordinatorError};

mod auth;
pub use auth::TokenCheck;

impl From<CoordinatorError> for Status {
    fn from(e: CoordinatorError) -> Self {
        match &e {
            CoordinatorError::Invalid(_) | CoordinatorError::Dataset(_) => {
                Status::invalid_argument(e.to_string())
            }
            CoordinatorError::NotFound(_) => Status::not_found(e.to_string()),
            CoordinatorError::State(_) | CoordinatorError::Store(_) => Status::internal(e.to_string()),
        }
    }
}

/// The `Jobs` service.
#[derive(Clone)]
pub struct JobsService(pub Arc<Coordinator>);

/// The `Work` service.
#[derive(Clone)]
pub struct WorkService(pub Arc<Coordinator>);

/// True for states a job does not leave.
pub fn is_final(state: i32) -> bool {
    matches!(
        JobState::try_from(state),
        Ok(JobState::Succeeded | JobState::Failed | JobState::Cancelled)
    )
}

type WatchStream = Pin<Box<dyn Stream<Item = Result<JobStatus, Status>> + Send + 'static>>;

#[tonic::async_trait]
impl Jobs for JobsService {
    async fn submit(&self, req: Request<SubmitJobRequest>) -> Result<Response<SubmitJobResponse>, Status> {
        let req = req.into_inner();
        let spec = req
            .spec
            .ok_or_else(|| Status::invalid_argument("a submission needs a job spec"))?;
        let (id, unchanged) = self.0.submit(spec, req.if_changed).await?;
        Ok(Response::new(SubmitJobResponse {
            job_id: id.to_string(),
            unchanged,
        }))
    }

    async fn status(&self, req: Request<JobStatusRequest>) -> Result<Response<JobStatus>, Status> {
        Ok(Response::new(self.0.status(&req.into_inner().job_id)?))
    }

    async fn get(&self, req: Request<JobStatusRequest>) -> Result<Response<JobStatus>, Status> {
        self.status(req).await
    }

    type WatchStream = WatchStream;

    async fn watch(&self, req: Request<JobStatusRequest>) -> Result<Response<Self::WatchStream>, Status> {
        let job = req.into_inner().job_id;
        let first = self.0.status(&job)?;
        let coordinator = self.0.clone();
        let changes = coordinator.subscribe();
        // Sends the status on every change (and at least every second, for
        // rates), ending after the first final state.
        let stream = futures::stream::unfold(
            (Some(first), changes, false),
            move |(pending, mut changes, done)| {
                let coordinator = coordinator.clone();
                let job = job.clone();
                async move {
                    if done {
                        return None;
                    }
                    let status = match pending {
                        Some(s) => Ok(s),
                        None => {
                            let _ = tokio::time::timeout(Duration::from_secs(1), changes.changed()).await;
                            coordinator.status(&job).map_err(Status::from)
                        }
                    };
                    let finished = status.as_ref().map_or(true, |s| is_final(s.state));
                    Some((status, (None, changes, finished)))
                }
            },
        );
        Ok(Response::new(Box::pin(stream)))
    }

    async fn list(&self, _req: Request<ListJobsRequest>) -> Result<Response<ListJobsResponse>, Status> {
        Ok(Response::new(ListJobsResponse { jobs: self.0.list()? }))
    }

    async fn cancel(&self, req: Request<CancelJobRequest>) -> Result<Response<CancelJobResponse>, Status> {
        let status = self.0.cancel(&req.into_inner().job_id)?;
        Ok(Response::new(CancelJobResponse { status: Some(status) }))
    }

    async fn results(&self, _req: Request<ResultsRequest>) -> Result<Response<ResultsResponse>, Status> {
        Ok(Response::new(ResultsResponse {
            results: self.0.results()?,
        }))
    }
}

#[tonic::async_trait]
impl Work for WorkService {
    async fn register(
        &self,
        req: Request<RegisterWorkerRequest>,
    ) -> Result<Response<RegisterWorkerResponse>, Status> {
        let r = req.into_inner();
        if r.protocol_version != headscan_proto::PROTOCOL_VERSION {
            return Err(Status::failed_precondition(format!(
                "worker speaks protocol {}, this coordinator {}",
                r.protocol_version,
                headscan_proto::PROTOCOL_VERSION
            )));
        }
        self.0.register(&r.worker_id, &r.device, &r.hostname)?;
        let policy = self.0.policy();
        Ok(Response::new(RegisterWorkerResponse {
            heartbeat_interval_ms: policy.heartbeat_ms,
            lease_ms: policy.lease_ms,
        }))
    }

    async fn lease(&self, req: Request<LeaseTaskRequest>) -> Result<Response<LeaseTaskResponse>, Status> {
        let task = self.0.lease(&req.into_inner().worker_id)?;
        Ok(Response::new(LeaseTaskResponse { task }))
    }

    async fn heartbeat(&self, req: Request<HeartbeatRequest>) -> Result<Response<HeartbeatResponse>, Status> {
        let r = req.into_inner();
        let beat = self.0.heartbeat(&r.worker_id, &r.task_id, r.sequences_done)?;
        Ok(Response::new(HeartbeatResponse {
            lease_expires_unix_ms: beat.expires_ms,
            abandon: beat.abandon,
        }))
    }

    async fn complete(
        &self,
        req: Request<CompleteTaskRequest>,
    ) -> Result<Response<CompleteTaskResponse>, Status> {
        let accepted = self.0.complete(req.into_inner()).await?;
        Ok(Response::new(CompleteTaskResponse { accepted }))
    }

    async fn fail(&self, req: Request<FailTaskRequest>) -> Result<Response<FailTaskResponse>, Status> {
        let r = req.into_inner();
        self.0.fail(&r.worker_id, &r.task_id, &r.reason)?;
        Ok(Response::new(FailTaskResponse {}))
    }
}

/// How the services are served.
#[derive(Debug, Clone, Default)]
pub struct ServeOptions {
    /// Every call must carry this bearer token.
    pub token: Option<String>,
    /// TLS certificate chain and private key (PEM).
    pub tls: Option<(Vec<u8>, Vec<u8>)>,
}

/// Errors serving.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    /// The transport failed.
    #[error("serving gRPC: {0}")]
    Transport(#[from] tonic::transport::Error),
}

/// Serves `Jobs` and `Work` on `listener` until `shutdown` completes.
pub async fn serve(
    coordinator: Arc<Coordinator>,
    listener: tokio::net::TcpListener,
    options: ServeOptions,
    shutdown: impl std::future::Future<Output = ()> + Send,
) -> Result<(), ServeError> {
    let check = TokenCheck::new(options.token.as_deref());
    let max = headscan_proto::MAX_MESSAGE_BYTES;
    let jobs = JobsServer::new(JobsService(coordinator.clone()))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let work = WorkServer::new(WorkService(coordinator))
        .max_decoding_message_size(max)
        .max_encoding_message_size(max);
    let mut builder = tonic::transport::Server::builder()
        .http2_keepalive_interval(Some(Duration::from_secs(20)))
        .tcp_nodelay(true);
    if let Some((cert, key)) = &options.tls {
        let identity = tonic::transport::Identity::from_pem(cert, key);
        builder = builder.tls_config(tonic::transport::ServerTlsConfig::new().identity(identity))?;
    }
    builder
        .add_service(tonic::service::interceptor::InterceptedService::new(
            jobs,
            check.clone(),
        ))
        .add_service(tonic::service::interceptor::InterceptedService::new(work, check))
        .serve_with_incoming_shutdown(tokio_stream::wrappers::TcpListenerStream::new(listener), shutdown)
        .await?;
    Ok(())
}
