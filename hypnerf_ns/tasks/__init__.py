"""What a trained prior is for: inversion, denoise-and-finetune, retrieval, text, evaluation,
meshes and videos. Functions on the library layer; the verbs (`hypnerf_ns.cli`) call them."""
