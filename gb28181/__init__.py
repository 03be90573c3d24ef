"""GB/T 28181 rules on top of the SIP stack: IDs, registrar, liveness, MANSCDP, media, cascading."""
