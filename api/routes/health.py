from fastapi import APIRouter, HTTPException, Request

from api.deps import ServicesDep
from api.schemas import Health, ReadyOut

router = APIRouter(tags=["health"])  # open: no API key
ready_router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health() -> Health:
    """The server is alive (no API key needed)."""
    return Health()


@ready_router.get("/ready", response_model=ReadyOut)
def ready(services: ServicesDep, request: Request) -> dict:
    """Models loaded, index readable and no request's work stuck past its time limit; 503 otherwise."""
    stuck = request.app.state.workers.stuck()
    if stuck:
        raise HTTPException(503, "a worker is stuck: " + "; ".join(stuck) + " (RAG_REQUEST_TIMEOUT_S)",
                            headers={"Retry-After": "5"})
    try:
        chunks = services.pipeline.index.count()
    except Exception as exc:  # noqa: BLE001 - any storage failure means "not ready"
        raise HTTPException(503, f"index not readable: {exc}", headers={"Retry-After": "5"}) from exc
    if not services.pipeline.ready:
        raise HTTPException(503, "models are still loading", headers={"Retry-After": "5"})
    return {"status": "ready", "chunks": chunks, "documents": len(services.ingestor.manifest),
            "generator": services.pipeline.generator.model_id, "embedder": services.pipeline.embedder.model_id,
            "dense": services.pipeline.dense.model_id}
