"""Category data: the on-disk layout (read and written), nerfstudio's dataparser and datamanager,
and the makers (meshes, furniture, procedural, SRN, ABO) with their checks and previews."""
