"""Formal proofs of the gateware (docs/verification.md, "What is proven, what is
simulated"): :mod:`.datapath` proves a layer's LIF datapath against the plain contract
(:mod:`.spec`) for every input; :mod:`.protocol` proves the stream protocol of a small
layer engine for a bounded number of cycles."""

from .datapath import (
    Counterexample,
    DatapathProof,
    LayerProof,
    ProofError,
    prove_datapath,
    prove_network,
)
from .protocol import ProtocolFailure, ProtocolResult, prove_protocol
from .spec import ContractSpec

__all__ = ["ContractSpec", "Counterexample", "DatapathProof", "LayerProof", "ProofError",
           "ProtocolFailure", "ProtocolResult", "prove_datapath", "prove_network",
           "prove_protocol"]
