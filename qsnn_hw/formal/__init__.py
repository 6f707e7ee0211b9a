"""Formal proofs of the gateware (docs/verification.md, "What is proven, what is
simulated"): :mod:`.datapath` proves a layer's LIF datapath against the plain contract
(:mod:`.spec`) for every input."""

from .datapath import (
    Counterexample,
    DatapathProof,
    LayerProof,
    ProofError,
    prove_datapath,
    prove_network,
)
from .spec import ContractSpec

__all__ = ["ContractSpec", "Counterexample", "DatapathProof", "LayerProof", "ProofError",
           "prove_datapath",
           "prove_network"]
