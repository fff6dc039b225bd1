"""The async glue of the data plane: admit → route → call → observe."""
