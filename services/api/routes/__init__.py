"""The API's endpoints, one APIRouter per resource; services.api.app includes them."""
