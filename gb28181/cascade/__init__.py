"""Cascading upward: we are the lower platform of superiors configured in ``[[upstream]]`` (GB/T 28181 §9.1,
§9.6, App.M, spec digest §11). Sans-IO: ``registration`` (the client state machine), ``share`` (what each
superior sees and the catalog packets it gets). The asyncio driving lives in the composition root."""
