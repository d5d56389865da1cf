"""Serve a trained model over HTTP: ``python scripts/serve.py model_dir=experiments/runs/<data>/<timestamp>``.

``model_dir`` is a run folder, an artifact or a model store (see docs/api.md); the server binds 127.0.0.1:8000
unless ``host=`` / ``port=`` say otherwise, and writes its monitor logs into the Hydra run folder
(``experiments/serve/<timestamp>/``). OpenAPI docs at ``/docs``. Settings: ``conf/serve.yaml``.
"""

from __future__ import annotations

import hydra
from omegaconf import DictConfig, OmegaConf, open_dict

from nam_mmm.entry import one_line_errors


@hydra.main(config_path="../conf", config_name="serve", version_base="1.3")
@one_line_errors
def main(cfg: DictConfig) -> None:
    import uvicorn

    from nam_mmm.serving.api import config_from, create_app

    cfg = OmegaConf.create(OmegaConf.to_container(cfg, resolve=True))
    with open_dict(cfg):
        level = str(cfg.pop("log_level", "info"))
    config = config_from(cfg)
    app = create_app(config)
    print(f"serving {app.state.served.model.version} from {app.state.served.model.path} on http://{config.host}:{config.port} (docs: /docs)")
    uvicorn.run(app, host=config.host, port=int(config.port), log_level=level)


if __name__ == "__main__":
    main()
