from fastapi import APIRouter, HTTPException

from api.deps import ServicesDep
from api.schemas import Health, ReadyOut

router = APIRouter(tags=["health"])  # open: no API key
ready_router = APIRouter(tags=["health"])


@router.get("/health", response_model=Health)
def health() -> Health:
    """The server is alive (no API key needed)."""
    return Health()


@ready_router.get("/ready", response_model=ReadyOut)
def ready(services: ServicesDep) -> dict:
    """Models loaded and index readable; 503 until then."""
    try:
        chunks = services.pipeline.index.count()
    except Exception as exc:  # noqa: BLE001 - any storage failure means "not ready"
        raise HTTPException(503, f"index not readable: {exc}", headers={"Retry-After": "5"}) from exc
    if not services.pipeline.ready:
        raise HTTPException(503, "models are still loading", headers={"Retry-After": "5"})
    return {"status": "ready", "chunks": chunks, "documents": len(services.ingestor.manifest),
            "generator": services.pipeline.generator.model_id, "embedder": services.pipeline.embedder.model_id,
            "dense": services.pipeline.dense.model_id}
